//! Conversions between the node's types and the generated protobuf types:
//! the one place that knows both. Requests are validated here, at the edge,
//! with messages a person can act on.

use std::collections::HashMap;

use super::pb;
use crate::engine::model::Severity;
use crate::engine::view::{CustomerView, EscalationView, TimelineKind, TimelineView};
use crate::engine::{EscalationEntry, EscalationKind, Event, Outcome, SlaEnd, Timestamp};
use crate::node::{
    DecisionReply, EscalationFilter, IngestReply, InvalidReason, NodeError, OpenEscalation,
    SlaChangeKind, StreamedEscalation,
};

/// Longest attribute key or value, and most attributes per event.
const MAX_ATTRIBUTE_LEN: usize = 4096;
const MAX_ATTRIBUTES: usize = 64;

/// An instant for the wire. One past the valid range (a deadline that
/// saturated beyond year 9999) goes out as the range's end, so the answer
/// is always a valid `Timestamp`.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    let t = t.clamp(Timestamp::MIN_VALID, Timestamp::MAX_VALID);
    prost_types::Timestamp {
        seconds: t.0.div_euclid(1_000_000),
        nanos: (t.0.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// An `occurred_at` from the wire. A value a protobuf `Timestamp` may not
/// hold (seconds outside 0001-01-01T00:00:00Z..=9999-12-31T23:59:59Z, nanos
/// outside 0..1e9) is refused, never clamped or wrapped.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Result<Timestamp, NodeError> {
    let seconds =
        Timestamp::MIN_VALID.0.div_euclid(1_000_000)..=Timestamp::MAX_VALID.0.div_euclid(1_000_000);
    if !seconds.contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(NodeError::Invalid(
            InvalidReason::OccurredAtOutOfRange,
            format!(
                "occurred_at is outside the valid Timestamp range {} (it has seconds = {}, nanos = {}; \
                 nanos must be in 0..1e9): send the instant the event happened",
                Timestamp::VALID_RANGE,
                t.seconds,
                t.nanos
            ),
        ));
    }
    // In range, so the product fits in an i64 with room to spare.
    Ok(Timestamp(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000))
}

/// An event from the wire; `bool`: whether `occurred_at` was set.
pub fn event(e: pb::Event) -> Result<(Event, bool), NodeError> {
    if e.attributes.len() > MAX_ATTRIBUTES {
        return Err(NodeError::Invalid(
            InvalidReason::Attributes,
            format!(
                "the event has {} attributes; at most {MAX_ATTRIBUTES} are allowed",
                e.attributes.len()
            ),
        ));
    }
    if let Some((k, _)) = e
        .attributes
        .iter()
        .find(|(k, v)| k.len() > MAX_ATTRIBUTE_LEN || v.len() > MAX_ATTRIBUTE_LEN)
    {
        return Err(NodeError::Invalid(
            InvalidReason::Attributes,
            format!(
                "attribute `{}` is longer than {MAX_ATTRIBUTE_LEN} bytes",
                k.chars().take(40).collect::<String>()
            ),
        ));
    }
    let (occurred_at, set) = match &e.occurred_at {
        Some(t) => (from_timestamp(t)?, true),
        None => (Timestamp(0), false),
    };
    Ok((
        Event {
            id: e.id,
            source: e.source,
            event_type: e.r#type,
            customer: e.customer_id,
            market: e.market,
            occurred_at,
            attributes: e.attributes.into_iter().collect(),
        },
        set,
    ))
}

/// An event back on the wire, as [`event`] read it (`set`: whether
/// `occurred_at` was), for a call forwarded to the shard's owner.
pub fn wire_event(e: Event, set: bool) -> pb::Event {
    pb::Event {
        id: e.id,
        source: e.source,
        r#type: e.event_type,
        customer_id: e.customer,
        market: e.market,
        occurred_at: set.then(|| timestamp(e.occurred_at)),
        attributes: e.attributes.into_iter().collect(),
    }
}

pub fn outcome(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Applied => pb::Outcome::Applied,
        Outcome::Duplicate => pb::Outcome::Duplicate,
        Outcome::Ignored => pb::Outcome::Ignored,
        Outcome::Rejected => pb::Outcome::Rejected,
        Outcome::Stale => pb::Outcome::Stale,
    }
}

pub fn kind(k: EscalationKind) -> pb::EscalationKind {
    match k {
        EscalationKind::TierReached => pb::EscalationKind::TierReached,
        EscalationKind::Breached => pb::EscalationKind::Breached,
        EscalationKind::Resolved => pb::EscalationKind::Resolved,
    }
}

pub fn severity(s: Severity) -> pb::Severity {
    match s {
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }
}

fn states(v: Vec<(String, String)>) -> HashMap<String, String> {
    v.into_iter().collect()
}

pub fn ingest_result(r: IngestReply) -> pb::IngestResult {
    pb::IngestResult {
        outcome: outcome(r.outcome) as i32,
        reason: r.reason.unwrap_or_default(),
        states: states(r.states),
        transitions: r
            .transitions
            .into_iter()
            .map(|t| pb::Transition {
                region: t.region,
                from: t.from,
                to: t.to,
            })
            .collect(),
        sla_changes: r
            .sla_changes
            .into_iter()
            .map(|c| pb::SlaChange {
                sla: c.sla,
                instance: c.instance,
                kind: match c.change {
                    SlaChangeKind::Started => pb::SlaChangeKind::Started,
                    SlaChangeKind::Ended(SlaEnd::Met) => pb::SlaChangeKind::Met,
                    SlaChangeKind::Ended(SlaEnd::Missed) => pb::SlaChangeKind::Late,
                    SlaChangeKind::Ended(SlaEnd::Cancelled) => pb::SlaChangeKind::Cancelled,
                } as i32,
                at: None,
                deadline: c.deadline.map(timestamp),
            })
            .collect(),
    }
}

pub fn decision(d: DecisionReply) -> pb::Decision {
    pb::Decision {
        allowed: d.allowed,
        reason: d.reason.unwrap_or_default(),
        states: states(d.states),
        owner: d.owner.unwrap_or_default(),
    }
}

fn open_view(customer: &str, market: &str, e: EscalationView) -> pb::OpenEscalation {
    pb::OpenEscalation {
        escalation_id: e.escalation_id,
        kind: kind(e.kind) as i32,
        sla: e.sla,
        tier: u32::from(e.tier),
        team: e.team,
        severity: severity(e.severity) as i32,
        deadline: Some(timestamp(e.deadline)),
        fired_at: Some(timestamp(e.fired_at)),
        late_attach: e.late_attach,
        acknowledged: e.acknowledged,
        customer_id: customer.to_owned(),
        market: market.to_owned(),
        repeat: e.repeat,
    }
}

fn timeline(t: TimelineView) -> pb::TimelineEntry {
    pb::TimelineEntry {
        at: Some(timestamp(t.at)),
        kind: match t.kind {
            TimelineKind::Event => pb::TimelineKind::Event,
            TimelineKind::Denied => pb::TimelineKind::Denied,
            TimelineKind::Escalation => pb::TimelineKind::Escalation,
            TimelineKind::SlaEnded => pb::TimelineKind::SlaEnded,
            TimelineKind::Acknowledged => pb::TimelineKind::Acknowledged,
            TimelineKind::Migrated => pb::TimelineKind::Migrated,
        } as i32,
        summary: t.summary,
        outcome: t.outcome.map_or(pb::Outcome::Unspecified, outcome) as i32,
        reason: t.reason.unwrap_or_default(),
        sla_outcome: t
            .sla_outcome
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        elapsed: t.elapsed.map(duration),
    }
}

/// Seconds (to the microsecond, as the view gives them) as a protobuf
/// `Duration`; negative durations keep both fields negative, as the type
/// requires.
fn duration(seconds: f64) -> prost_types::Duration {
    let micros = (seconds * 1e6).round() as i64;
    prost_types::Duration {
        seconds: micros / 1_000_000,
        nanos: ((micros % 1_000_000) * 1_000) as i32,
    }
}

pub fn customer_view(v: CustomerView) -> pb::CustomerView {
    let (customer, market) = (v.customer.clone(), v.market.clone());
    pb::CustomerView {
        customer_id: v.customer,
        market: v.market,
        model_version: v.model_version,
        owner: v.owner.unwrap_or_default(),
        regions: v
            .regions
            .into_iter()
            .map(|r| pb::RegionView {
                region: r.region,
                state: r.state,
                owner: r.owner,
                since: r.since.map(timestamp),
            })
            .collect(),
        proofs: v
            .proofs
            .into_iter()
            .map(|p| pb::ProofView {
                proof: p.proof,
                holds: p.holds,
                established_by: p.established_by.map(|e| pb::EventView {
                    id: e.id,
                    source: e.source,
                    r#type: e.event_type,
                    occurred_at: Some(timestamp(e.occurred_at)),
                }),
            })
            .collect(),
        slas: v
            .slas
            .into_iter()
            .map(|s| pb::SlaView {
                sla: s.sla,
                instance: s.instance,
                owner: s.owner,
                handoff: s.handoff,
                started_at: Some(timestamp(s.started_at)),
                deadline: s.deadline.map(timestamp),
                breached: s.breached,
                next_tier: s.next_tier.map(|n| pb::NextTier {
                    tier: u32::from(n.tier),
                    at: n.at.map(timestamp),
                    team: n.team,
                    severity: severity(n.severity) as i32,
                }),
                paused: s.paused,
                elapsed: Some(duration(s.elapsed)),
                remaining: Some(duration(s.remaining)),
                original_deadline: Some(timestamp(s.original_deadline)),
                calendar: s.calendar.unwrap_or_default(),
                paused_since: s.paused_since.map(timestamp),
            })
            .collect(),
        escalations: v
            .escalations
            .into_iter()
            .map(|e| open_view(&customer, &market, e))
            .collect(),
        timeline: v.timeline.into_iter().map(timeline).collect(),
        timeline_withheld: false,
    }
}

pub fn escalation_event(cursor: String, e: EscalationEntry) -> pb::EscalationEvent {
    pb::EscalationEvent {
        cursor,
        escalation_id: e.escalation_id,
        kind: kind(e.kind) as i32,
        customer_id: e.customer,
        market: e.market,
        sla: e.sla,
        tier: u32::from(e.tier),
        team: e.team,
        severity: severity(e.severity) as i32,
        deadline: Some(timestamp(e.deadline)),
        fired_at: Some(timestamp(e.fired_at)),
        late_attach: e.late_attach,
        handoff: e.handoff,
        states: states(e.states),
        repeat: e.repeat,
        due: Some(timestamp(e.due)),
        gap: false,
        skipped: 0,
    }
}

pub fn streamed(s: StreamedEscalation) -> pb::EscalationEvent {
    pb::EscalationEvent {
        gap: s.skipped > 0,
        skipped: s.skipped,
        ..escalation_event(s.cursor, s.entry)
    }
}

pub fn open(o: OpenEscalation) -> pb::OpenEscalation {
    let e = o.entry;
    pb::OpenEscalation {
        escalation_id: e.escalation_id,
        kind: kind(e.kind) as i32,
        sla: e.sla,
        tier: u32::from(e.tier),
        team: e.team,
        severity: severity(e.severity) as i32,
        deadline: Some(timestamp(e.deadline)),
        fired_at: Some(timestamp(e.fired_at)),
        late_attach: e.late_attach,
        acknowledged: o.acknowledged,
        customer_id: e.customer,
        market: e.market,
        repeat: e.repeat,
    }
}

pub fn filter(r: &pb::SubscribeRequest) -> Result<EscalationFilter, NodeError> {
    let min_severity = match pb::Severity::try_from(r.min_severity) {
        Ok(pb::Severity::Unspecified) => None,
        Ok(pb::Severity::Low) => Some(Severity::Low),
        Ok(pb::Severity::Medium) => Some(Severity::Medium),
        Ok(pb::Severity::High) => Some(Severity::High),
        Ok(pb::Severity::Critical) => Some(Severity::Critical),
        Err(_) => {
            return Err(NodeError::Invalid(
                InvalidReason::UnknownEnumValue,
                format!(
                    "min_severity = {} is not a severity (1 low .. 4 critical, 0 for all)",
                    r.min_severity
                ),
            ));
        }
    };
    Ok(EscalationFilter {
        teams: r.teams.clone(),
        markets: r.markets.clone(),
        min_severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_back_on_the_wire_as_it_came() {
        let sent = pb::Event {
            id: "e1".into(),
            source: "billing".into(),
            r#type: "payment_succeeded".into(),
            customer_id: "c1".into(),
            market: "DE".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_000,
            }),
            attributes: [("plan".to_owned(), "pro".to_owned())].into(),
        };
        let (e, set) = event(sent.clone()).expect("a valid event");
        assert_eq!(wire_event(e, set), sent);
        let unset = pb::Event {
            occurred_at: None,
            ..sent
        };
        let (e, set) = event(unset.clone()).expect("a valid event");
        assert_eq!(wire_event(e, set), unset);
    }
}
