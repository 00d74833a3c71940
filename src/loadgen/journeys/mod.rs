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
pub use options::{JourneyOptions, default_gap, shortest_tier};
pub use rng::Rng;

#[cfg(test)]
mod tests;
