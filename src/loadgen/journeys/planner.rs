//! The planner: the engine itself on one customer while a journey is
//! planned, so generation asks the engine what each event would do instead
//! of guessing from the model. That includes where an SLA's tiers fall:
//! with a business calendar and pauses they are where the elapsed SLA time
//! reaches them (the engine's [`Instance::instant_of`]), not start + offset,
//! and the planner answers from the very instance the engine keeps.

use super::journey::{Occurred, Step, When, market_code};
use crate::engine::model::SlaRules;
use crate::engine::model::{
    Duration, EventTypeId, MarketId, Model, ProofId, RegionId, SlaId, StateId,
};
use crate::engine::{CustomerState, Decision, Event, Fact, Input, Instance, Limits, Timestamp};
use crate::virtual_time::VirtualTime;

/// A running SLA instance, as the planner sees it.
#[derive(Debug, Clone)]
pub(super) struct RunningInstance {
    /// The engine's instance: its start, pauses and deadline, so its clock.
    pub(super) state: Instance,
    /// The last step whose event started, paused or resumed it: the clock
    /// runs on from that step's `occurred_at` on the wall clock's pace (or
    /// its calendar's), so a step timed from it lands where planned even
    /// if earlier steps were sent late.
    pub(super) anchor: usize,
}

/// The engine on one customer, as a journey is planned: what the node will
/// do, assuming each step is sent a gap after the previous one.
#[derive(Clone)]
pub(super) struct Planner<'m> {
    model: &'m Model,
    pub(super) market: MarketId,
    gap: Duration,
    /// When the first step is sent.
    epoch: Timestamp,
    vt: VirtualTime<'m>,
    pub(super) steps: Vec<Step>,
    sent: Vec<Timestamp>,
    pub(super) occurred: Vec<Timestamp>,
    /// (sla, instance) -> a step that started, paused or resumed it, in
    /// step order.
    clock_steps: Vec<(SlaId, u32, usize)>,
}

/// The customer id the planner uses (any id: only the journey is kept).
const PLAN_CUSTOMER: &str = "plan";

impl<'m> Planner<'m> {
    /// A planner for a customer of `market` whose first step is sent at
    /// `epoch`, each next one `gap` after the previous.
    pub(super) fn new(
        model: &'m Model,
        market: MarketId,
        gap: Duration,
        epoch: Timestamp,
    ) -> Planner<'m> {
        Planner {
            model,
            market,
            gap,
            epoch,
            vt: VirtualTime::new(model, Limits::default()),
            steps: Vec::new(),
            sent: Vec::new(),
            occurred: Vec::new(),
            clock_steps: Vec::new(),
        }
    }

    /// The effective rules of `sla` in the customer's market.
    pub(super) fn rules(&self, sla: SlaId) -> &'m SlaRules {
        &self.model.rules(self.market).slas[sla.idx()]
    }

    fn state(&self) -> Option<&CustomerState> {
        self.vt.customer(PLAN_CUSTOMER).filter(|s| s.exists)
    }

    pub(super) fn region_state(&self, r: RegionId) -> StateId {
        match self.state() {
            Some(s) => s.core.regions[r.idx()].state,
            None => self.model.region(r).initial,
        }
    }

    pub(super) fn holds(&self, p: ProofId) -> bool {
        self.state().is_some_and(|s| s.core.proofs[p.idx()].holds())
    }

    /// SLAs with a running instance, in file order.
    pub(super) fn running(&self) -> Vec<SlaId> {
        let Some(s) = self.state() else {
            return Vec::new();
        };
        self.model
            .sla_ids()
            .filter(|id| s.core.running(*id).is_some())
            .collect()
    }

    pub(super) fn instance(&self, sla: SlaId) -> Option<RunningInstance> {
        let inst = self.state()?.core.running(sla)?;
        let anchor = self
            .clock_steps
            .iter()
            .rev()
            .find(|(s, n, _)| *s == sla && *n == inst.number)
            .map(|(_, _, step)| *step)?;
        Some(RunningInstance {
            state: inst.clone(),
            anchor,
        })
    }

    pub(super) fn next_id(&self) -> u16 {
        self.steps.iter().map(|s| s.id + 1).max().unwrap_or(0)
    }

    /// When a `When::Gap` step would be sent next.
    pub(super) fn next_at(&self) -> Timestamp {
        match self.sent.last() {
            Some(t) => *t + self.gap,
            None => self.epoch,
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
    pub(super) fn trial(&self, e: EventTypeId, at: Timestamp) -> Decision {
        let ev = Input::Event(self.event(e, self.next_id(), at));
        if self.vt.next_due().is_none_or(|due| due > at) {
            return self.vt.decide(PLAN_CUSTOMER, &ev, at);
        }
        let mut vt = self.vt.clone();
        while vt.fire_next(at).is_some() {}
        vt.decide(PLAN_CUSTOMER, &ev, at)
    }

    /// Sends a step in the plan: fires what is due first, as the node would.
    pub(super) fn push(&mut self, step: Step) {
        let at = match step.when {
            When::Gap => self.next_at(),
            When::AfterOccurred {
                step: anchor,
                offset,
            } => {
                let prev = self.sent.last().copied().unwrap_or(self.epoch);
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
            if let Fact::SlaStarted { sla, instance, .. }
            | Fact::SlaPaused { sla, instance, .. }
            | Fact::SlaResumed { sla, instance, .. } = f
            {
                self.clock_steps.push((*sla, *instance, index));
            }
        }
        self.steps.push(step);
        self.sent.push(at);
        self.occurred.push(occurred_at);
    }
}
