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

pub mod model;
