//! Handoff: a runtime in which every customer is an actor that knows, as a
//! matter of record, where the customer stands in its lifecycle, who owns it
//! there, what each team may do, and which hand-off deadlines are running.
//!
//! Everything follows from one pure, deterministic engine
//! (`decide(model, state, input, now) -> facts`, `apply(state, fact)`),
//! driven by the node's customer actors, `handoff simulate` in virtual
//! time, and loadgen's expectations.
//!
//! # Layout
//!
//! The write path goes down, never back up: `api` -> `node` -> `shard`
//! (router, actor: decide, with the customer's version from `versions`)
//! -> `journal` -> `state` -> `store`, with `engine` below them all and
//! `reply` (what a call answers) below the shard.
//!
//! - [`engine`]: the lifecycle engine; pure, no clock, no I/O.
//!   - [`engine::model`]: the model file: parsing, load-time checks, interned
//!     ids, per-market rule tables, the graph picture, the catalog that
//!     keeps stored ids' names across model edits.
//! - [`simulate`]: `handoff simulate`: the engine in virtual time over JSON
//!   lines, with an in-memory timer queue.
//! - [`replay`]: the replay gate: `handoff history export` (recorded
//!   inputs as `simulate` lines) and `handoff model diff` (two versions
//!   replayed over them, compared per market).
//! - [`node`]: a running node's handle: admission (load shedding, the
//!   dispatch window), ingest, decisions, views, escalation streams with
//!   cursors, the escalation log's retention, open escalations, customer
//!   queries over the secondary indexes, reports from the store's
//!   counters; its config.
//! - [`versions`]: every published version of the model (kept in the
//!   store, bound to its catalog) and the rollout table by market: which
//!   version serves each customer, and which a new one starts on.
//! - [`reply`]: what a call answers and the errors it can fail with, each
//!   with a kind; produced by the shard, mapped to gRPC by `api`.
//! - [`shard`]: shard routers (passivation, the active-actor cap, the
//!   firing lane), customer actors (load, decide, propose, await), the
//!   node's batching loader of customer records, per-shard timer services.
//! - [`journal`]: where decisions become durable in one order: group
//!   commit (firings first), per-shard escalation sequence numbers, commit
//!   notifications.
//! - [`state`]: committed entries to store rows: the one place that knows
//!   the row layout, including the customer query indexes' keys and the
//!   report counters.
//! - [`store`]: the storage trait, the fjall and memory stores, the prost
//!   codec of durable records, and the cluster's PostgreSQL store (fenced
//!   commits, shard leases, node membership).
//! - [`cluster`]: a node's life in a cluster: joining, renewing and
//!   balancing shard leases, handing shards over, the shard map that
//!   forwarding and escalation readers use. Above the node: it starts and
//!   stops the node's shards as leases come and go.
//! - [`testkit`]: a real local PostgreSQL, started by tests and benches.
//! - [`api`]: the gRPC services (`handoff.v1`), conversions, status mapping,
//!   authentication of callers and TLS; in a cluster, forwarding calls to
//!   the node that serves their customer's shard.
//! - [`auth`]: who may say what: principals, tokens and their hashes, the
//!   rules that bind callers to the model.
//! - [`clock`]: the only place the node reads the time.
//! - [`metrics`]: the Prometheus recorder and what is recorded.
//! - [`web`]: the node's HTTP listener: `/metrics` and the dashboard
//!   (overview, customer lists and the support view, the live escalation
//!   feed, the model drawn), a client of the gRPC services in process.
//! - [`client`]: the bearer-token interceptor clients share (the CLI,
//!   loadgen).
//! - [`virtual_time`]: the engine in virtual time (customers and one timer
//!   queue), shared by `simulate` and loadgen's expectations.
//! - [`loadgen`]: `handoff loadgen`: journeys generated from a model, driven
//!   into a running node over gRPC, escalations checked against the engine
//!   run in virtual time over what was sent.
//! - [`cli`]: the `handoff` command line (one file per command); the binary
//!   in `src/main.rs` only parses arguments and calls it.

pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod engine;
pub mod journal;
pub mod loadgen;
pub mod metrics;
pub mod node;
pub mod replay;
pub mod reply;
pub mod shard;
pub mod simulate;
pub mod state;
pub mod store;
pub mod testkit;
pub mod versions;
pub mod virtual_time;
pub mod web;
