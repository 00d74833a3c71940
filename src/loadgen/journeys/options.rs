//! How journeys are generated (seed, failure share and kinds, gap, length,
//! which SLAs may fail, how many customers keep the ball a while, when they
//! start), and the defaults a model implies.

use super::failure::FailureKind;
use crate::engine::Timestamp;
use crate::engine::model::{Duration, MarketId, Model};

/// The instant journeys are planned from when none is given: only
/// differences matter on the wall clock, but not on a business calendar
/// (2026-01-01T00:00:00Z, a holiday in every office: a calendar SLA then
/// counts nothing until the next working morning).
pub const PLAN_EPOCH: Timestamp = Timestamp(1_767_225_600_000_000);

/// How journeys are generated.
#[derive(Debug, Clone)]
pub struct JourneyOptions {
    pub seed: u64,
    /// Share of customers (0..=1) with one deliberate failure.
    pub failure_share: f64,
    /// Which failures to draw from (uniformly).
    pub failure_kinds: Vec<FailureKind>,
    /// Time between a step's acknowledgement and the next step.
    pub gap: Duration,
    /// Events before the SLAs are closed: at least this many...
    pub min_events: usize,
    /// ...and at most this many.
    pub max_events: usize,
    /// SLA failures (never stopped, stopped late) only on SLA instances
    /// whose breach comes at most this long after their start, on the wall
    /// clock (a calendar SLA started after hours breaches the next working
    /// day), so their breach falls inside the run.
    pub max_sla: Duration,
    /// Share of customers (0..=1) that, with an SLA running that pauses
    /// (`pause_in`), enter one of its pause states and leave it again
    /// (waiting on the customer, then the customer replies) before it ends.
    pub pause_share: f64,
    /// When the first customer starts: journeys are planned as if sent from
    /// here, so business calendars see the hours of the real run.
    pub epoch: Timestamp,
}

impl JourneyOptions {
    /// The defaults for `model`: 5% failures of every kind, 3 to 5 events
    /// before closing, a gap well inside the shortest tier, 20% of
    /// customers pausing an SLA, planned from [`PLAN_EPOCH`].
    pub fn for_model(model: &Model, seed: u64) -> JourneyOptions {
        JourneyOptions {
            seed,
            failure_share: 0.05,
            failure_kinds: FailureKind::ALL.to_vec(),
            gap: default_gap(model),
            min_events: 3,
            max_events: 5,
            max_sla: Duration::from_secs(60),
            pause_share: 0.2,
            epoch: PLAN_EPOCH,
        }
    }
}

/// A twentieth of the shortest tier offset of any SLA in any market,
/// between 1 ms and 100 ms: events of a healthy journey land well before
/// any tier, so whether a tier fires never hangs on network timing.
pub fn default_gap(model: &Model) -> Duration {
    let shortest = shortest_tier(model).unwrap_or(Duration::from_secs(2));
    Duration((shortest.0 / 20).clamp(1_000, 100_000))
}

/// The earliest tier offset (or `within`) of any SLA in any market.
pub fn shortest_tier(model: &Model) -> Option<Duration> {
    let markets = model.spec.markets.len().max(1);
    (0..markets)
        .flat_map(|m| model.rules(MarketId(m as u16)).slas.iter())
        .flat_map(|s| s.tier_offsets.iter().copied().chain([s.within]))
        .filter(|d| d.0 > 0)
        .min()
}
