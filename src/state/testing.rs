//! A customer driven through the real engine, proposing entries as an
//! actor does: for the state layer's and the journal's tests.

use super::Entry;
use crate::engine::model::{Model, load};
use crate::engine::{CustomerState, Event, Input, Limits, Timer, Timestamp, decide};

pub const SAAS: &str = include_str!("../../examples/saas.toml");
pub const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
pub const MIN: i64 = 60_000_000;

pub fn saas() -> Model {
    load("examples/saas.toml", SAAS).expect("the reference model loads")
}

/// One customer driven through the engine, proposing entries as an actor
/// does.
pub struct Customer {
    pub name: String,
    pub state: Option<CustomerState>,
    pub seq: u64,
}

impl Customer {
    pub fn new(name: &str) -> Customer {
        Customer {
            name: name.into(),
            state: None,
            seq: 0,
        }
    }

    pub fn decide(&mut self, model: &Model, input: Input, fired: Option<Timer>, at: i64) -> Entry {
        let d = decide(
            model,
            &Limits::default(),
            self.state.as_ref(),
            &input,
            Timestamp(at),
        );
        let index_before = self
            .state
            .as_ref()
            .map(|s| super::index::memberships(model, s))
            .unwrap_or_default();
        let mut state = self
            .state
            .take()
            .unwrap_or_else(|| CustomerState::empty(model, &self.name));
        for f in &d.facts {
            state.apply(model, f);
        }
        let entry = Entry {
            shard: 3,
            epoch: 0,
            customer: self.name.clone(),
            model_version: model.spec.version,
            model: std::sync::Arc::new(model.clone()),
            seq: self.seq + 1,
            facts: d.facts,
            at: Timestamp(at),
            timers: d.timers,
            fired,
            state: state.clone(),
            index_before,
            index_after: None,
        };
        self.seq += entry.facts.len() as u64;
        self.state = Some(state);
        entry
    }

    pub fn event(&mut self, model: &Model, source: &str, ty: &str, at: i64) -> Entry {
        let e = Event {
            id: format!("{ty}-{at}"),
            source: source.into(),
            event_type: ty.into(),
            customer: self.name.clone(),
            market: "US".into(),
            occurred_at: Timestamp(at),
            attributes: Default::default(),
        };
        self.decide(model, Input::Event(e), None, at)
    }

    /// Fires the customer's earliest pending timer at its due time.
    pub fn fire(&mut self, model: &Model) -> Entry {
        let t = self
            .state
            .as_ref()
            .and_then(|s| s.timers().min())
            .expect("a pending timer");
        self.decide(model, Input::Timer(t), Some(t), t.due.0)
    }
}
