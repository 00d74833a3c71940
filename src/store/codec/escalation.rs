//! Escalations: the `Escalation` part (in facts and the timeline) and the
//! escalation log's `EscalationRecord`, which carries names, not ids.

use prost::Message;

use super::{Bad, R, id, kind_from, kind_to, severity_from, severity_to};
use crate::engine::EscalationEntry;
use crate::engine::model::{SlaId, TeamId};
use crate::engine::{Escalation, Timestamp};
use crate::store::{Result, StoreError, pb};

/// The bytes of an `EscalationRecord`.
pub fn encode_escalation(e: &EscalationEntry) -> Vec<u8> {
    escalation_record(e).encode_to_vec()
}

/// An escalation log entry from the bytes of its `EscalationRecord`.
pub fn decode_escalation(bytes: &[u8]) -> Result<EscalationEntry> {
    let record = pb::EscalationRecord::decode(bytes)
        .map_err(|e| StoreError::corrupt("escalation record", e.to_string()))?;
    escalation_entry(record).map_err(|Bad(reason)| StoreError::corrupt("escalation record", reason))
}

pub(super) fn escalation_record_of(e: &Escalation) -> pb::Escalation {
    pb::Escalation {
        kind: kind_to(e.kind),
        sla: e.sla.0.into(),
        instance: e.instance,
        tier: e.tier.into(),
        repeat: e.repeat,
        team: e.team.0.into(),
        severity: severity_to(e.severity),
        deadline: e.deadline.0,
        due: e.due.0,
        at: e.at.0,
        late_attach: e.late_attach,
    }
}

pub(super) fn escalation(r: pb::Escalation) -> R<Escalation> {
    Ok(Escalation {
        kind: kind_from(r.kind, "kind")?,
        sla: SlaId(id(r.sla, "sla")?),
        instance: r.instance,
        tier: id(r.tier, "tier")?,
        repeat: r.repeat,
        team: TeamId(id(r.team, "team")?),
        severity: severity_from(r.severity, "severity")?,
        deadline: Timestamp(r.deadline),
        due: Timestamp(r.due),
        at: Timestamp(r.at),
        late_attach: r.late_attach,
    })
}

fn escalation_record(e: &EscalationEntry) -> pb::EscalationRecord {
    pb::EscalationRecord {
        escalation_id: e.escalation_id.clone(),
        kind: kind_to(e.kind),
        customer_id: e.customer.clone(),
        market: e.market.clone(),
        sla: e.sla.clone(),
        tier: e.tier.into(),
        repeat: e.repeat,
        team: e.team.clone(),
        severity: severity_to(e.severity),
        deadline: e.deadline.0,
        due: e.due.0,
        fired_at: e.fired_at.0,
        late_attach: e.late_attach,
        handoff: e.handoff.clone(),
        states: e
            .states
            .iter()
            .map(|(region, state)| pb::StatePair {
                region: region.clone(),
                state: state.clone(),
            })
            .collect(),
        instance: e.instance,
    }
}

fn escalation_entry(r: pb::EscalationRecord) -> R<EscalationEntry> {
    Ok(EscalationEntry {
        escalation_id: r.escalation_id,
        kind: kind_from(r.kind, "kind")?,
        customer: r.customer_id,
        market: r.market,
        sla: r.sla,
        instance: r.instance,
        tier: id(r.tier, "tier")?,
        repeat: r.repeat,
        team: r.team,
        severity: severity_from(r.severity, "severity")?,
        deadline: Timestamp(r.deadline),
        due: Timestamp(r.due),
        fired_at: Timestamp(r.fired_at),
        late_attach: r.late_attach,
        handoff: r.handoff,
        states: r.states.into_iter().map(|p| (p.region, p.state)).collect(),
    })
}
