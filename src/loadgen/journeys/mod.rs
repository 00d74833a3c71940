//! Journeys: what each simulated customer sends, generated from the model
//! the node serves, so loadgen exercises any model, not only the example.
//!
//! A journey is planned by running the engine itself on the customer as it
//! goes (a `Planner`): pick a market; then, again and again, take a move
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
//! A share of customers (`pause_share`, `handoff loadgen --pauses`) also
//! keep the ball a while: with an SLA running that pauses (`pause_in`), and
//! nothing else running, they enter one of its pause states (waiting on the
//! customer) and, half to one and a half targets later, leave it (the
//! customer replies), before the SLA is closed or fails. The events are
//! the ones the engine says pause and resume that SLA.
//!
//! Tiers are where an instance's elapsed SLA time reaches them: on a
//! business calendar and across pauses, not start + offset. Every instant
//! the planner needs comes from the engine's own instance (its deadline,
//! [`crate::engine::Instance::instant_of`]), so journeys are planned from
//! the run's real start (`epoch`): the calendar sees the hours the run
//! sends in. Elapsed SLA time never runs faster than the wall clock, so a
//! healthy journey's events stay at least as far from every tier as on a
//! 24x7 clock. A failure's victim is an SLA whose breach falls within
//! `max_sla` of its start on the wall clock (a calendar SLA started after
//! hours is none), and a late stop is placed half way, in elapsed SLA
//! time, between the breach and the next re-escalation.
//!
//! Everything is deterministic for a seed: customer `i`'s journey depends
//! only on the model, the options and `(seed, i)`, so it can be generated
//! lazily, in any order, and again for a report.
//!
//! Layout: `rng` (the seeded generator), `journey` (what a journey is: its
//! steps, when each is sent and the `occurred_at` it carries), `failure`
//! (the failure kinds and the step rewrites for duplicates and swaps),
//! `options` (how journeys are generated), `generator` (the walk through the
//! model, closing SLAs and planning SLA failures) and `planner` (the engine
//! on one customer while a journey is planned).

mod failure;
mod generator;
mod journey;
mod options;
mod planner;
mod rng;

pub use failure::FailureKind;
pub use generator::Generator;
pub use journey::{Journey, Occurred, Step, When, market_code};
pub use options::{JourneyOptions, PLAN_EPOCH, default_gap, shortest_tier};
pub use rng::Rng;

#[cfg(test)]
mod tests;
