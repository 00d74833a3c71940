//! What one customer sends: a journey's steps, when each is sent and the
//! `occurred_at` it carries, and the events they become.

use super::failure::FailureKind;
use crate::engine::model::{Duration, EventTypeId, MarketId, Model};
use crate::engine::{Event, Timestamp};

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
