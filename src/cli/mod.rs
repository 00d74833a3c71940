//! The `handoff` command line: one file per command, each a thin layer that
//! reads files and arguments, calls the library and writes the result.

pub mod customer;
pub mod customers;
pub mod escalations;
pub mod history;
pub mod ingest;
pub mod loadgen;
pub mod migrate;
pub mod model;
pub mod model_diff;
pub mod print;
pub mod publish;
pub mod report;
pub mod rollout;
pub mod serve;
pub mod simulate;
pub mod store;
pub mod target;
pub mod token;
