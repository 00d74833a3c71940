//! The replay gate (MODEL.md, "Before a rollout: replay"): a model
//! version judged against real history before a market's customers start
//! on it.
//!
//! - [`export`]: every customer's recorded inputs, read back from a
//!   store's facts, as `handoff simulate` input lines.
//! - [`diff`]: those lines replayed through two model versions in virtual
//!   time (the `simulate` engine), compared per market: what differs,
//!   where first, and what the history never exercised.
//!
//! The readings chosen (what is exported, what counts as which kind of
//! difference) are in docs/replay.md.

pub mod diff;
pub mod export;

#[cfg(test)]
mod tests;

pub use diff::{DiffError, DiffKind, DiffReport, Difference, MarketReport, diff};
pub use export::{ExportError, History, export};
