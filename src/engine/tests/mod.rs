//! Unit tests of the engine on the reference model: one test per rule of
//! docs/model.md and its settled readings (cited as "FAQ n"), asserting on
//! facts and outcomes.
//!
//! A file per area: `events` (events, proofs, regions, deduplication),
//! `slas` (SLA instances, tiers, breaches, escalation ids), `authorization`
//! (authorize, check_message, acknowledge), `unified_view`, and `replay`
//! (the replay property test). This file holds the `Harness` they drive.

mod authorization;
mod events;
mod pauses;
mod replay;
mod slas;
mod unified_view;

use std::collections::HashMap;

use super::model::{Model, SlaId, load};
use super::*;

const SAAS: &str = include_str!("../../../examples/saas.toml");
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000_000;

fn t(minutes: i64) -> Timestamp {
    Timestamp(T0 + minutes * MIN)
}

fn saas() -> Model {
    load("examples/saas.toml", SAAS).expect("the reference model loads")
}

/// Customers, their facts, and the engine, driven by hand.
struct Harness {
    model: Model,
    limits: Limits,
    states: HashMap<String, CustomerState>,
    facts: HashMap<String, Vec<Fact>>,
    /// Pending timers as the decisions' `armed`/`disarmed` lists left them.
    timers: HashMap<String, std::collections::BTreeSet<Timer>>,
}

impl Harness {
    fn new(model: Model) -> Harness {
        Harness {
            model,
            limits: Limits::default(),
            states: HashMap::new(),
            facts: HashMap::new(),
            timers: HashMap::new(),
        }
    }

    fn run(&mut self, customer: &str, input: Input, now: Timestamp) -> Decision {
        let d = decide(
            &self.model,
            &self.limits,
            self.states.get(customer),
            &input,
            now,
        );
        if !d.facts.is_empty() {
            let state = self
                .states
                .entry(customer.to_owned())
                .or_insert_with(|| CustomerState::empty(&self.model, customer));
            for f in &d.facts {
                state.apply(&self.model, f);
            }
            self.facts
                .entry(customer.to_owned())
                .or_default()
                .extend(d.facts.iter().cloned());
        }
        let timers = self.timers.entry(customer.to_owned()).or_default();
        for x in &d.timers.disarmed {
            assert!(timers.remove(x), "disarmed a timer that was armed: {x:?}");
        }
        for x in &d.timers.armed {
            assert!(timers.insert(*x), "armed a timer twice: {x:?}");
        }
        d
    }

    /// An event of `source.type` with id, occurred at `occurred` minutes,
    /// received at `now` minutes; market US unless the id says otherwise.
    fn ev(&mut self, c: &str, id: &str, qualified: &str, occurred: i64, now: i64) -> Decision {
        self.ev_in(c, id, qualified, occurred, now, "US")
    }

    fn ev_in(
        &mut self,
        c: &str,
        id: &str,
        qualified: &str,
        occurred: i64,
        now: i64,
        market: &str,
    ) -> Decision {
        let (source, ty) = qualified.split_once('.').expect("source.type");
        let event = Event {
            id: id.into(),
            source: source.into(),
            event_type: ty.into(),
            customer: c.into(),
            market: market.into(),
            occurred_at: t(occurred),
            attributes: Default::default(),
        };
        self.run(c, Input::Event(event), t(now))
    }

    /// Fires every timer of `c` due by `now` minutes, in order; returns the
    /// escalations.
    fn fire_until(&mut self, c: &str, now: i64) -> Vec<Escalation> {
        let mut out = Vec::new();
        while let Some(next) = self
            .states
            .get(c)
            .and_then(|s| s.timers().min_by_key(|t| (t.due, t.sla, t.tier)))
            .filter(|next| next.due <= t(now))
        {
            let d = self.run(c, Input::Timer(next), next.due);
            assert!(!d.facts.is_empty(), "a pending timer fires: {next:?}");
            out.extend(escalations(&d));
        }
        out
    }

    fn state(&self, c: &str) -> &CustomerState {
        self.states.get(c).expect("customer exists")
    }

    fn region(&self, c: &str, region: &str) -> String {
        let views = view::states(&self.model, self.state(c));
        views
            .into_iter()
            .find(|(r, _)| r == region)
            .map(|(_, s)| s)
            .expect("region exists")
    }

    fn sla(&self, name: &str) -> SlaId {
        self.model.sla(name).expect("sla exists")
    }
}

fn escalations(d: &Decision) -> Vec<Escalation> {
    d.facts
        .iter()
        .filter_map(|f| match f {
            Fact::Escalated(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn kinds(es: &[Escalation]) -> Vec<(EscalationKind, u16, u32)> {
    es.iter().map(|e| (e.kind, e.tier, e.repeat)).collect()
}
