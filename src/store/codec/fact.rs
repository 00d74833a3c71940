//! `FactRecord`: one engine fact, one key of a customer's history.

use prost::Message;

use super::escalation::{escalation, escalation_record_of};
use super::{
    At, Bad, R, bad, end_from, end_to, event_ref, event_ref_record, id, outcome_from, outcome_to,
    required,
};
use crate::engine::model::{Duration, MarketId, ProofId, RegionId, SlaId, StateId, TeamId};
use crate::engine::{Fact, Timestamp};
use crate::store::{Result, StoreError, pb};

/// The bytes of a `FactRecord`.
pub fn encode_fact(f: &Fact) -> Vec<u8> {
    fact_record(f).encode_to_vec()
}

/// A fact from the bytes of its `FactRecord`.
pub fn decode_fact(bytes: &[u8]) -> Result<Fact> {
    let record = pb::FactRecord::decode(bytes)
        .map_err(|e| StoreError::corrupt("fact record", e.to_string()))?;
    fact(record).map_err(|Bad(reason)| StoreError::corrupt("fact record", reason))
}

pub(super) fn fact_record(f: &Fact) -> pb::FactRecord {
    use pb::fact_record::Fact as F;
    let fact = match f {
        Fact::Created {
            market,
            market_code,
            model_version,
            at,
        } => F::Created(pb::Created {
            market: market.0.into(),
            market_code: market_code.to_string(),
            model_version: *model_version,
            at: at.0,
        }),
        Fact::EventRecorded {
            event,
            received_at,
            outcome,
            reason,
        } => F::EventRecorded(pb::EventRecorded {
            event: Some(event_ref_record(event)),
            received_at: received_at.0,
            outcome: outcome_to(*outcome),
            reason: reason.as_deref().map(str::to_owned),
        }),
        Fact::ProofEstablished { proof, by } => F::ProofEstablished(pb::ProofEstablished {
            proof: proof.0.into(),
            by: Some(event_ref_record(by)),
        }),
        Fact::ProofRevoked { proof, at, held } => F::ProofRevoked(pb::ProofRevoked {
            proof: proof.0.into(),
            at: at.0,
            held: *held,
        }),
        Fact::RegionMoved {
            region,
            from,
            to,
            since,
            automatic,
        } => F::RegionMoved(pb::RegionMoved {
            region: region.0.into(),
            from: from.0.into(),
            to: to.0.into(),
            since: since.0,
            automatic: *automatic,
        }),
        Fact::RegionRenewed { region, since } => F::RegionRenewed(pb::RegionRenewed {
            region: region.0.into(),
            since: since.0,
        }),
        Fact::SlaStarted {
            sla,
            instance,
            started_at,
            deadline,
            attached_at,
        } => F::SlaStarted(pb::SlaStarted {
            sla: sla.0.into(),
            instance: *instance,
            started_at: started_at.0,
            deadline: deadline.0,
            attached_at: attached_at.0,
        }),
        Fact::SlaPaused { sla, instance, at } => F::SlaPaused(pb::SlaPaused {
            sla: sla.0.into(),
            instance: *instance,
            at: at.0,
        }),
        Fact::SlaResumed {
            sla,
            instance,
            at,
            attached_at,
        } => F::SlaResumed(pb::SlaResumed {
            sla: sla.0.into(),
            instance: *instance,
            at: at.0,
            attached_at: attached_at.0,
        }),
        Fact::Escalated(e) => F::Escalated(escalation_record_of(e)),
        Fact::Breached { sla, instance, at } => F::Breached(pb::Breached {
            sla: sla.0.into(),
            instance: *instance,
            at: at.0,
        }),
        Fact::SlaEnded {
            sla,
            instance,
            end,
            at,
            elapsed,
        } => F::SlaEnded(pb::SlaEnded {
            sla: sla.0.into(),
            instance: *instance,
            end: end_to(*end),
            at: at.0,
            elapsed: elapsed.0,
        }),
        Fact::AuthorizationDenied {
            team,
            action,
            reason,
            at,
        } => F::AuthorizationDenied(pb::AuthorizationDenied {
            team: team.to_string(),
            action: action.to_string(),
            reason: reason.to_string(),
            at: at.0,
        }),
        Fact::Acknowledged {
            sla,
            instance,
            tier,
            repeat,
            team,
            note,
            at,
        } => F::Acknowledged(pb::Acknowledged {
            sla: sla.0.into(),
            instance: *instance,
            tier: (*tier).into(),
            repeat: *repeat,
            team: team.0.into(),
            note: note.to_string(),
            at: at.0,
        }),
        Fact::Migrated { from, to, at } => F::Migrated(pb::Migrated {
            from: *from,
            to: *to,
            at: at.0,
        }),
    };
    pb::FactRecord { fact: Some(fact) }
}

fn fact(r: pb::FactRecord) -> R<Fact> {
    use pb::fact_record::Fact as F;
    let fact = r.fact.map_or_else(
        || bad("fact", "missing (a fact kind this build does not know?)"),
        Ok,
    )?;
    Ok(match fact {
        F::Created(c) => Fact::Created {
            market: MarketId(id(c.market, "market").at("created")?),
            market_code: c.market_code.into(),
            model_version: c.model_version,
            at: Timestamp(c.at),
        },
        F::EventRecorded(e) => Fact::EventRecorded {
            event: event_ref(required(e.event, "event").at("event_recorded")?)
                .at("event_recorded.event")?,
            received_at: Timestamp(e.received_at),
            outcome: outcome_from(e.outcome, "outcome").at("event_recorded")?,
            reason: e.reason.map(Into::into),
        },
        F::ProofEstablished(p) => Fact::ProofEstablished {
            proof: ProofId(id(p.proof, "proof").at("proof_established")?),
            by: event_ref(required(p.by, "by").at("proof_established")?)
                .at("proof_established.by")?,
        },
        F::ProofRevoked(p) => Fact::ProofRevoked {
            proof: ProofId(id(p.proof, "proof").at("proof_revoked")?),
            at: Timestamp(p.at),
            held: p.held,
        },
        F::RegionMoved(m) => {
            let ids = || -> R<_> {
                Ok((
                    RegionId(id(m.region, "region")?),
                    StateId(id(m.from, "from")?),
                    StateId(id(m.to, "to")?),
                ))
            };
            let (region, from, to) = ids().at("region_moved")?;
            Fact::RegionMoved {
                region,
                from,
                to,
                since: Timestamp(m.since),
                automatic: m.automatic,
            }
        }
        F::RegionRenewed(r) => Fact::RegionRenewed {
            region: RegionId(id(r.region, "region").at("region_renewed")?),
            since: Timestamp(r.since),
        },
        F::SlaStarted(s) => Fact::SlaStarted {
            sla: SlaId(id(s.sla, "sla").at("sla_started")?),
            instance: s.instance,
            started_at: Timestamp(s.started_at),
            deadline: Timestamp(s.deadline),
            attached_at: Timestamp(s.attached_at),
        },
        F::SlaPaused(p) => Fact::SlaPaused {
            sla: SlaId(id(p.sla, "sla").at("sla_paused")?),
            instance: p.instance,
            at: Timestamp(p.at),
        },
        F::SlaResumed(r) => Fact::SlaResumed {
            sla: SlaId(id(r.sla, "sla").at("sla_resumed")?),
            instance: r.instance,
            at: Timestamp(r.at),
            attached_at: Timestamp(r.attached_at),
        },
        F::Escalated(e) => Fact::Escalated(escalation(e).at("escalated")?),
        F::Breached(b) => Fact::Breached {
            sla: SlaId(id(b.sla, "sla").at("breached")?),
            instance: b.instance,
            at: Timestamp(b.at),
        },
        F::SlaEnded(s) => Fact::SlaEnded {
            sla: SlaId(id(s.sla, "sla").at("sla_ended")?),
            instance: s.instance,
            end: end_from(s.end, "end").at("sla_ended")?,
            at: Timestamp(s.at),
            elapsed: Duration(s.elapsed),
        },
        F::AuthorizationDenied(d) => Fact::AuthorizationDenied {
            team: d.team.into(),
            action: d.action.into(),
            reason: d.reason.into(),
            at: Timestamp(d.at),
        },
        F::Acknowledged(a) => {
            let ids = || -> R<_> {
                Ok((
                    SlaId(id(a.sla, "sla")?),
                    id(a.tier, "tier")?,
                    TeamId(id(a.team, "team")?),
                ))
            };
            let (sla, tier, team) = ids().at("acknowledged")?;
            Fact::Acknowledged {
                sla,
                instance: a.instance,
                tier,
                repeat: a.repeat,
                team,
                note: a.note.into(),
                at: Timestamp(a.at),
            }
        }
        F::Migrated(m) => Fact::Migrated {
            from: m.from,
            to: m.to,
            at: Timestamp(m.at),
        },
    })
}
