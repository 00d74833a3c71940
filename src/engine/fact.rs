//! Facts: what happened to a customer, as `decide` found it. A customer's
//! facts, applied in order, are its whole history; its state is their fold.

use std::sync::Arc;

use super::model::{
    Duration, EventTypeId, MarketId, ProofId, RegionId, Severity, SlaId, SourceId, StateId, TeamId,
};
use super::time::Timestamp;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Some state, proof or SLA changed, or the event created the customer.
    Applied,
    /// Same `(source, id)` seen before for this customer: nothing changed.
    Duplicate,
    /// Nothing reacted to it.
    Ignored,
    /// Malformed, unknown to the model, or a transition was blocked.
    Rejected,
    /// A region that would have moved had already entered its state later.
    Stale,
}

impl Outcome {
    /// The lower-case word of every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Rejected => "rejected",
            Outcome::Stale => "stale",
        }
    }
}

/// The event that established a proof (or that an outcome is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub source: SourceId,
    pub event_type: EventTypeId,
    /// Shared with the timeline and the idempotency keys: one allocation.
    pub id: Arc<str>,
    pub occurred_at: Timestamp,
}

/// How an SLA instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaEnd {
    /// Stopped while its elapsed SLA time was under `within`, before any
    /// breach fired.
    Met,
    /// Stopped at or after its deadline, or after its breach fired
    /// (completed late; FAQ 45).
    Missed,
    /// No longer applies; nothing more escalates.
    Cancelled,
}

impl SlaEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaEnd::Met => "met",
            SlaEnd::Missed => "missed",
            SlaEnd::Cancelled => "cancelled",
        }
    }
}

/// The kind of an escalation event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EscalationKind {
    /// A tier before the breach, or a re-escalation after it.
    TierReached,
    /// The `100%` tier.
    Breached,
    /// The instance ended; this escalation is done.
    Resolved,
}

impl EscalationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationKind::TierReached => "tier_reached",
            EscalationKind::Breached => "breached",
            EscalationKind::Resolved => "resolved",
        }
    }
}

/// One firing of a tier, or its resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub kind: EscalationKind,
    pub sla: SlaId,
    pub instance: u32,
    pub tier: u16,
    pub repeat: u32,
    pub team: TeamId,
    pub severity: Severity,
    /// The SLA instance's deadline (`start + within`).
    pub deadline: Timestamp,
    /// When the tier was due.
    pub due: Timestamp,
    /// When it fired (or was resolved).
    pub at: Timestamp,
    /// Fired at once because the SLA started already past its breach.
    pub late_attach: bool,
}

impl Escalation {
    /// The deterministic id: `customer:sla:instance:tier:repeat`. SLA names
    /// hold no `:`, so the customer part is everything before the last four.
    pub fn id(&self, customer: &str, sla_name: &str) -> String {
        escalation_id(customer, sla_name, self.instance, self.tier, self.repeat)
    }
}

/// `customer:sla:instance:tier:repeat`; see [`parse_escalation_id`].
pub fn escalation_id(customer: &str, sla: &str, instance: u32, tier: u16, repeat: u32) -> String {
    format!("{customer}:{sla}:{instance}:{tier}:{repeat}")
}

/// The parts of an escalation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRef<'a> {
    pub customer: &'a str,
    pub sla: &'a str,
    pub instance: u32,
    pub tier: u16,
    pub repeat: u32,
}

/// Splits an escalation id made by [`Escalation::id`].
pub fn parse_escalation_id(id: &str) -> Option<EscalationRef<'_>> {
    let mut parts = id.rsplitn(5, ':');
    let repeat = parts.next()?.parse().ok()?;
    let tier = parts.next()?.parse().ok()?;
    let instance = parts.next()?.parse().ok()?;
    let sla = parts.next()?;
    let customer = parts.next()?;
    (!customer.is_empty() && !sla.is_empty()).then_some(EscalationRef {
        customer,
        sla,
        instance,
        tier,
        repeat,
    })
}

/// Something that happened to a customer. `apply` folds it into the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The customer's first event created it, in a market, on a model version.
    Created {
        market: MarketId,
        market_code: Box<str>,
        model_version: u32,
        at: Timestamp,
    },
    /// An event reached the customer (step 3) with this outcome. Remembered
    /// for deduplication, kept in the timeline, and its `occurred_at`
    /// updates the latest seen of its type.
    EventRecorded {
        event: EventRef,
        received_at: Timestamp,
        outcome: Outcome,
        reason: Option<Box<str>>,
    },
    ProofEstablished {
        proof: ProofId,
        by: EventRef,
    },
    /// `held` says whether the proof held before; a revocation of a proof
    /// that did not hold only records its time.
    ProofRevoked {
        proof: ProofId,
        at: Timestamp,
        held: bool,
    },
    /// A region moved to another state (`automatic` for `when` transitions).
    RegionMoved {
        region: RegionId,
        from: StateId,
        to: StateId,
        since: Timestamp,
        automatic: bool,
    },
    /// A transition to the current state: renews the region's moment only.
    RegionRenewed {
        region: RegionId,
        since: Timestamp,
    },
    /// An SLA instance started; tiers already strictly past at `attached_at`
    /// are skipped (the breach then fires at once, as its own fact).
    ///
    /// `deadline` is where the elapsed SLA time reaches `within` on the
    /// calendar alone (the original deadline). The instance's pauses are
    /// the customer's pause spans for the SLA (its `SlaSlot::pause_log`)
    /// from `started_at` on (FAQ 39): a late start skips the pauses since.
    SlaStarted {
        sla: SlaId,
        instance: u32,
        started_at: Timestamp,
        deadline: Timestamp,
        attached_at: Timestamp,
    },
    /// The customer entered a `pause_in` state of a running instance's SLA
    /// (at that region's moment): its clock stops.
    SlaPaused {
        sla: SlaId,
        instance: u32,
        at: Timestamp,
    },
    /// The customer left the last `pause_in` state (at that moment): the
    /// clock runs again and pending tiers are due where the elapsed SLA
    /// time now reaches them; those strictly past at `attached_at` follow
    /// the late-attach rule (FAQ 41).
    SlaResumed {
        sla: SlaId,
        instance: u32,
        at: Timestamp,
        attached_at: Timestamp,
    },
    /// A tier fired (or a fired escalation was resolved).
    Escalated(Escalation),
    /// The deadline of an SLA with no `100%` tier passed: recorded, silent.
    Breached {
        sla: SlaId,
        instance: u32,
        at: Timestamp,
    },
    /// An instance ended: its outcome and its elapsed SLA time at `at`
    /// (FAQ 46).
    SlaEnded {
        sla: SlaId,
        instance: u32,
        end: SlaEnd,
        at: Timestamp,
        elapsed: Duration,
    },
    /// `authorize` said no; kept in the timeline.
    AuthorizationDenied {
        team: Box<str>,
        action: Box<str>,
        reason: Box<str>,
        at: Timestamp,
    },
    Acknowledged {
        sla: SlaId,
        instance: u32,
        tier: u16,
        repeat: u32,
        team: TeamId,
        note: Box<str>,
        at: Timestamp,
    },
    /// An operator re-pinned the customer from model version `from` to
    /// `to` (`handoff customers migrate`). Applied with the *target*
    /// version's model: running instances keep their start, fired tiers
    /// and pauses; pending tiers and the deadline are worked out again by
    /// `to`'s rules, as of `at` (a tier then strictly past is skipped, the
    /// breach fires at once: the late-attach rule).
    Migrated {
        from: u32,
        to: u32,
        at: Timestamp,
    },
}

/// The kinds serialize as their lower-case words (`handoff simulate`'s
/// JSON, the view).
macro_rules! serialize_as_word {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}

serialize_as_word!(Outcome, EscalationKind, SlaEnd);
