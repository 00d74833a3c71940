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
    /// How far before `now` an `occurred_at` may lie: an event older than
    /// this is a sender's mistake (a zero or default timestamp, a replay
    /// of an old export), and would open SLAs already breached.
    pub max_past: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 256,
            max_future: Duration::from_secs(300),
            max_past: Duration::from_secs(365 * 86_400),
        }
    }
}

/// Why an event is malformed as data (MODEL.md step 1): a small, fixed set,
/// so that it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedKind {
    /// An id, source, type or customer id is empty.
    Empty,
    /// An id, source, type, customer id or market is over-long.
    TooLong,
    /// An id, source, type, customer id or market has a control character.
    ControlCharacter,
    /// `occurred_at` is outside the valid Timestamp range.
    OccurredAtOutOfRange,
    /// `occurred_at` is more than `max_future` after `now`.
    OccurredAtFuture,
    /// `occurred_at` is more than `max_past` before `now`.
    OccurredAtPast,
}

/// An event refused as malformed: why, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Malformed {
    pub kind: MalformedKind,
    /// For the sender: what is wrong and what to do.
    pub message: String,
}

impl Malformed {
    pub fn new(kind: MalformedKind, message: impl Into<String>) -> Malformed {
        Malformed {
            kind,
            message: message.into(),
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
