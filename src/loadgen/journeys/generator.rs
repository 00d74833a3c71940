//! Journey generation: a walk through the model from the initial states,
//! the events that close every SLA it started, the planned failure, and for
//! a share of customers a while in one of an SLA's pause states (waiting on
//! the customer, then the customer replies).

use super::failure::{FailureKind, duplicate, swap};
use super::journey::{Journey, Occurred, Step, When};
use super::options::JourneyOptions;
use super::planner::{Planner, RunningInstance};
use super::rng::Rng;
use crate::engine::model::{Duration, EventTypeId, MarketId, Model, ProofId, SlaId};
use crate::engine::{Decision, Fact, SlaEnd, Timestamp, tier_threshold};

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
        let pause = rng.chance(self.options.pause_share);

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

        let mut plan = self.planner(market);
        for s in &steps {
            plan.push(*s);
        }
        match wanted {
            Some(kind @ (FailureKind::NeverStopped | FailureKind::StoppedLate)) => {
                match self.fail_an_sla(&mut plan, kind, pause, &mut rng) {
                    Some(kind) => failure = Some(kind),
                    None => {
                        // No SLA runs that could fail: deliver one event twice.
                        let mut with_dup = plan.steps.clone();
                        duplicate(&mut with_dup, &mut rng);
                        plan = self.planner(market);
                        for s in &with_dup {
                            plan.push(*s);
                        }
                        self.finish(&mut plan, pause, &mut rng);
                        failure = Some(FailureKind::Duplicate);
                    }
                }
            }
            Some(FailureKind::Duplicate | FailureKind::OutOfOrder) | None => {
                self.finish(&mut plan, pause, &mut rng);
            }
        }
        Journey {
            index,
            market,
            steps: plan.steps,
            failure,
        }
    }

    /// A planner for a customer of `market`, from the options' epoch.
    fn planner(&self, market: MarketId) -> Planner<'m> {
        Planner::new(self.model, market, self.options.gap, self.options.epoch)
    }

    /// Closes every running SLA; with `pause`, first keeps the customer a
    /// while in a pause state of one that pauses (see
    /// [`Self::wait_on_customer`]).
    fn finish(&self, plan: &mut Planner, pause: bool, rng: &mut Rng) {
        if pause && let Some(sla) = self.pausable(plan) {
            self.close(plan, Some(sla));
            self.wait_on_customer(plan, sla, rng);
        }
        self.close(plan, None);
    }

    /// The first running SLA, in file order, that pauses somewhere and is
    /// not paused now.
    fn pausable(&self, plan: &Planner) -> Option<SlaId> {
        plan.running().into_iter().find(|s| {
            !plan.rules(*s).pause_in.is_empty()
                && plan.instance(*s).is_some_and(|i| !i.state.paused())
        })
    }

    /// Waiting on the customer: sends the event that puts the customer in
    /// one of `sla`'s pause states, and a while later the one that takes it
    /// out (the customer replies), each chosen by asking the engine which
    /// event pauses (resumes) `sla` without ending it, starting the fewest
    /// SLAs. The while is half to one and a half times the SLA's target
    /// (at most `max_sla`, at least a gap): long enough that a node whose
    /// clock did not stop would breach during it.
    ///
    /// Only when `sla` is the one SLA running and not paused: then no tier
    /// comes due during the pause, and the two events are as far from
    /// `sla`'s tiers as the events before them (the elapsed SLA time is
    /// flat in between). Returns whether it planned the pause; if no event
    /// pauses and resumes `sla`, the plan is left as it was.
    fn wait_on_customer(&self, plan: &mut Planner, sla: SlaId, rng: &mut Rng) -> bool {
        if plan.running() != [sla] || plan.instance(sla).is_none_or(|i| i.state.paused()) {
            return false;
        }
        let mut trial = plan.clone();
        let Some(enter) = self.clock_mover(&trial, sla, trial.next_at(), true) else {
            return false;
        };
        let enter_step = trial.steps.len();
        trial.push(Step {
            event: enter,
            id: trial.next_id(),
            when: When::Gap,
            occurred: Occurred::AtSend,
        });
        let within = plan.rules(sla).within.0.max(1);
        let drawn = within / 2 + rng.below(usize::try_from(within).unwrap_or(usize::MAX)) as i64;
        let wait = Duration(
            drawn
                .min(self.options.max_sla.0)
                .max(self.options.gap.0)
                .max(1),
        );
        let back = trial.occurred[enter_step] + wait;
        let Some(leave) = self.clock_mover(&trial, sla, back, false) else {
            return false;
        };
        trial.push(Step {
            event: leave,
            id: trial.next_id(),
            when: When::AfterOccurred {
                step: enter_step as u16,
                offset: wait,
            },
            occurred: Occurred::AtSend,
        });
        *plan = trial;
        true
    }

    /// The event that, sent at `at`, pauses (`pause`) or resumes `sla`
    /// without ending it, starting and ending as few other SLAs as
    /// possible; the first such in event order.
    fn clock_mover(
        &self,
        plan: &Planner,
        sla: SlaId,
        at: Timestamp,
        pause: bool,
    ) -> Option<EventTypeId> {
        let moves = |d: &Decision| {
            d.facts.iter().any(|f| match f {
                Fact::SlaPaused { sla: s, .. } => pause && *s == sla,
                Fact::SlaResumed { sla: s, .. } => !pause && *s == sla,
                _ => false,
            })
        };
        let mut best: Option<(usize, EventTypeId)> = None;
        for e in (0..self.model.spec.events.len()).map(|e| EventTypeId(e as u16)) {
            let d = plan.trial(e, at);
            if !moves(&d) {
                continue;
            }
            let mut cost = 0;
            let mut ends = false;
            for f in &d.facts {
                match f {
                    Fact::SlaEnded { sla: s, .. } if *s == sla => ends = true,
                    Fact::SlaStarted { .. } | Fact::SlaEnded { .. } => cost += 1,
                    _ => {}
                }
            }
            if !ends && best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, e));
            }
        }
        best.map(|(_, e)| e)
    }

    /// The events of a walk through the model from the initial states.
    fn walk(&self, rng: &mut Rng, market: MarketId) -> Vec<EventTypeId> {
        let span = self
            .options
            .max_events
            .saturating_sub(self.options.min_events);
        let target = self.options.min_events + rng.below(span + 1);
        let mut plan = self.planner(market);
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
    /// SLA that breaches soonest after its start on the wall clock (its
    /// target; on a calendar, the open time it needs from where it
    /// started, nights and holidays included, as the engine reckons it),
    /// if at most `max_sla` (so the run need not wait long for its breach);
    /// a paused one is no victim. The others are closed; with `pause`, the
    /// customer waits on itself a while in the victim's pause state first.
    /// Returns the failure planned.
    fn fail_an_sla(
        &self,
        plan: &mut Planner,
        kind: FailureKind,
        pause: bool,
        rng: &mut Rng,
    ) -> Option<FailureKind> {
        let mut candidates: Vec<(Duration, SlaId)> = plan
            .running()
            .into_iter()
            .filter_map(|s| {
                let inst = plan.instance(s)?;
                let span = Duration(inst.state.deadline.0 - inst.state.started_at.0);
                (!inst.state.paused() && span <= self.options.max_sla).then_some((span, s))
            })
            .collect();
        candidates.sort();
        for (_, victim) in candidates {
            let mut trial = plan.clone();
            self.close(&mut trial, Some(victim));
            if pause {
                self.wait_on_customer(&mut trial, victim, rng);
            }
            let Some(inst) = trial.instance(victim) else {
                continue;
            };
            if kind == FailureKind::StoppedLate
                && let Some(late) = self.late_stop(&trial, victim, &inst)
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

    /// The step that stops `victim` after its deadline: where its elapsed
    /// SLA time is half way from the breach to the first re-escalation (or
    /// half a target past the breach), so no tier is due near the moment it
    /// is sent: at least that half on the wall clock either side, since the
    /// elapsed time never runs faster than the wall clock. The instant is
    /// the engine's ([`crate::engine::Instance::instant_of`] on the
    /// instance with its calendar and pauses); none if a calendar puts it
    /// more than `max_sla` (and more than the half) past the breach, so a
    /// run never waits out a night for a late stop. The step is timed from
    /// the step that last started, paused or resumed the instance.
    fn late_stop(&self, plan: &Planner, victim: SlaId, inst: &RunningInstance) -> Option<Step> {
        let rules = plan.rules(victim);
        // The first re-escalation after the breach, in elapsed SLA time.
        let next_after_breach = (0..rules.tier_offsets.len())
            .filter(|&i| rules.tier_offsets[i] >= rules.within)
            .flat_map(|i| [0, 1].map(|k| tier_threshold(rules, i, k).0 - rules.within.0))
            .filter(|d| *d > 0)
            .min();
        let margin = (next_after_breach.unwrap_or(rules.within.0) / 2).max(1);
        let at = inst
            .state
            .instant_of(rules, Duration(rules.within.0 + margin))?;
        if at.0 - inst.state.deadline.0 > self.options.max_sla.0.max(margin) {
            return None;
        }
        let e = self.ender(plan, victim, None, at)?;
        let anchor = inst.anchor;
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
