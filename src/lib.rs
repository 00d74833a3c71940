//! Handoff: a runtime in which every customer is an actor that knows, as a
//! matter of record, where the customer stands in its lifecycle, who owns it
//! there, what each team may do, and which hand-off deadlines are running.
//!
//! Everything follows from one pure, deterministic engine
//! (`decide(model, state, input, now) -> facts`, `apply(state, fact)`),
//! driven here by the command line and `handoff simulate` in virtual time.
//!
//! # Layout
//!
//! - [`engine`]: the lifecycle engine; pure, no clock, no I/O.
//!   - [`engine::model`]: the model file: parsing, load-time checks, interned
//!     ids, per-market rule tables, the graph picture.
//! - [`store`]: durable storage behind a narrow trait: customer records,
//!   fact journals, timers, escalation logs, idempotency keys; on fjall with
//!   group commit, or in memory; the prost codec of the durable records.
//! - [`api`]: the gRPC edge (`handoff.v1`); for now the generated types.
//! - [`virtual_time`]: the engine in virtual time (customers and one timer
//!   queue), shared by `simulate` and loadgen's expectations.
//! - [`simulate`]: `handoff simulate`: the engine in virtual time over JSON
//!   lines.
//! - [`loadgen`]: `handoff loadgen`: journeys generated from a model, driven
//!   into a running node over gRPC, escalations checked against the engine
//!   run in virtual time over what was sent.
//! - [`cli`]: the `handoff` command line (one file per command); the binary
//!   in `src/main.rs` only parses arguments and calls it.

pub mod api;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod loadgen;
pub mod metrics;
pub mod node;
pub mod replication;
pub mod shard;
pub mod simulate;
pub mod store;
pub mod virtual_time;
