//! The lifecycle engine: a pure, deterministic function of a model, a
//! customer's state, an input and the time.
//!
//! ```text
//! decide(model, state, input, now) -> Decision { facts, outcome, timers }
//! apply(state, fact)                -> state'
//! ```
//!
//! No clock reads, no I/O, no randomness. The same code serves the server,
//! `handoff simulate`, recovery by replay and every replica.
//!
//! The model format it follows is `docs/model.md` (a mirror of the contract's
//! MODEL.md and MODEL-FAQ.md). Comments here cite it as "docs/model.md step n"
//! (the steps for one event) and "FAQ n" (its settled reading n, anchor
//! `#faq-n`), numbered as in the contract.

pub mod calendar;
pub mod model;

mod decide;
mod fact;
mod input;
mod log_entry;
mod state;
mod time;
pub mod view;

pub use decide::{Decision, Refusal, TimerChanges, check_malformed, decide};
pub use fact::{
    Escalation, EscalationKind, EscalationRef, EventRef, Fact, Outcome, SlaEnd, escalation_id,
    parse_escalation_id,
};
pub use input::{Event, Input, Limits, Malformed, MalformedKind, Timer};
pub use log_entry::EscalationEntry;
pub use state::{
    Core, CustomerState, FiredEscalation, Instance, PauseSpan, ProofSlot, RESOLVED_CAP, RegionSlot,
    ResolvedEscalation, SeenKeys, SlaSlot, TIMELINE_CAP, TierSlot, TimelineEntry, tier_threshold,
};
pub use time::Timestamp;

#[cfg(test)]
mod tests;
