//! What the engine is asked to decide on: an event from a source system, a
//! timer that came due, a team asking to act, an acknowledgement.

use std::collections::BTreeMap;

use super::model::{Duration, SlaId};
use super::time::Timestamp;

/// An event as a source system sent it, before the model has looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Unique per source: the idempotency key.
    pub id: String,
    pub source: String,
    /// The type alone (`payment_succeeded`).
    pub event_type: String,
    pub customer: String,
    /// Required on a customer's first event; else must match or be empty.
    pub market: String,
    /// When it happened (the edge sets it to the arrival time when unset).
    pub occurred_at: Timestamp,
    pub attributes: BTreeMap<String, String>,
}

/// A timer that came due: the next tier of one SLA instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timer {
    /// When it is due (its own instant, not the SLA's deadline).
    pub due: Timestamp,
    pub sla: SlaId,
    /// The tier (index in file order); [`Timer::BREACH_MARK`] for the
    /// silent breach of an SLA that has no `100%` tier.
    pub tier: u16,
    /// Which occurrence of a repeating tier (0 for the first).
    pub repeat: u32,
    /// The SLA instance (1, 2, ... per customer and SLA).
    pub instance: u32,
}

impl Timer {
    /// The tier number of the breach of an SLA with no `100%` tier: it is
    /// recorded at the deadline but notifies no one.
    pub const BREACH_MARK: u16 = u16::MAX;
}

/// Limits on event data (docs/model.md step 1); configurable at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest id, source, type or customer id, in characters.
    pub max_len: usize,
    /// How far past `now` an `occurred_at` may lie.
    pub max_future: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 256,
            max_future: Duration::from_secs(300),
        }
    }
}

/// One input to [`super::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Event(Event),
    Timer(Timer),
    /// May `team` take `action` now? A denial is kept in the timeline.
    Authorize {
        team: String,
        action: String,
    },
    Acknowledge {
        escalation_id: String,
        team: String,
        note: String,
    },
}
