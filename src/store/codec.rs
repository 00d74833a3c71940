//! Conversions between engine types and the durable records of
//! `proto/handoff/v1/store.proto`: the one place that knows both.
//!
//! Encoding is total and deterministic (the same state gives the same
//! bytes). Decoding checks everything the engine relies on (ids fit their
//! 16-bit types, enums are known, required parts are present) and reports
//! the first problem as [`StoreError::Corrupt`] with the path of the field;
//! it never panics on bad bytes. Ids are not checked against a model: a
//! record is meaningful only with the model version it names.

use std::collections::VecDeque;
use std::fmt;

use prost::Message;

use super::{Result, StoreError, pb};
use crate::engine::EscalationEntry;
use crate::engine::model::{
    EventTypeId, MarketId, ProofId, RegionId, Severity, SlaId, SourceId, StateId, TeamId,
};
use crate::engine::{
    Core, CustomerState, Escalation, EscalationKind, EventRef, Fact, FiredEscalation, Instance,
    Outcome, ProofSlot, RegionSlot, ResolvedEscalation, SeenKeys, SlaEnd, SlaSlot, TierSlot,
    TimelineEntry, Timestamp,
};

/// The bytes of a `CustomerRecord`.
pub fn encode_customer(s: &CustomerState) -> Vec<u8> {
    customer_record(s).encode_to_vec()
}

/// A customer's state from the bytes of its `CustomerRecord`.
pub fn decode_customer(bytes: &[u8]) -> Result<CustomerState> {
    let record = pb::CustomerRecord::decode(bytes)
        .map_err(|e| StoreError::corrupt("customer record", e.to_string()))?;
    let what = format!("customer record of `{}`", record.customer);
    customer_state(record).map_err(|Bad(reason)| StoreError::corrupt(what, reason))
}

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

/// The bytes of a `FactBatch`: the facts of one command, one journal entry.
pub fn encode_facts(facts: &[Fact]) -> Vec<u8> {
    pb::FactBatch {
        facts: facts.iter().map(fact_record).collect(),
    }
    .encode_to_vec()
}

/// The facts of one journal entry.
pub fn decode_facts(bytes: &[u8]) -> Result<Vec<Fact>> {
    let batch = pb::FactBatch::decode(bytes)
        .map_err(|e| StoreError::corrupt("journal entry", e.to_string()))?;
    batch
        .facts
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            fact(r).map_err(|Bad(reason)| {
                StoreError::corrupt("journal entry", format!("facts[{i}]: {reason}"))
            })
        })
        .collect()
}

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

// ------------------------------------------------------------- decode errors

/// Why a record does not decode: `path.to.field: reason`.
struct Bad(String);

type R<T> = std::result::Result<T, Bad>;

trait At<T> {
    /// Prefixes the error's path with `field`.
    fn at(self, field: impl fmt::Display) -> R<T>;
}

impl<T> At<T> for R<T> {
    fn at(self, field: impl fmt::Display) -> R<T> {
        self.map_err(|Bad(m)| Bad(format!("{field}.{m}")))
    }
}

fn bad<T>(field: &str, reason: impl fmt::Display) -> R<T> {
    Err(Bad(format!("{field}: {reason}")))
}

fn id(v: u32, field: &str) -> R<u16> {
    u16::try_from(v).or_else(|_| bad(field, format!("{v} does not fit a 16-bit id")))
}

fn required<T>(v: Option<T>, field: &str) -> R<T> {
    v.map_or_else(|| bad(field, "missing"), Ok)
}

/// Decodes each element, naming its index in errors.
fn each<P, T>(items: Vec<P>, field: &str, f: impl Fn(P) -> R<T>) -> R<Vec<T>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, p)| f(p).at(format_args!("{field}[{i}]")))
        .collect()
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

// ------------------------------------------------------------------- enums

fn outcome_to(o: Outcome) -> i32 {
    (match o {
        Outcome::Applied => pb::Outcome::Applied,
        Outcome::Duplicate => pb::Outcome::Duplicate,
        Outcome::Ignored => pb::Outcome::Ignored,
        Outcome::Rejected => pb::Outcome::Rejected,
        Outcome::Stale => pb::Outcome::Stale,
    }) as i32
}

fn outcome_from(v: i32, field: &str) -> R<Outcome> {
    match pb::Outcome::try_from(v) {
        Ok(pb::Outcome::Applied) => Ok(Outcome::Applied),
        Ok(pb::Outcome::Duplicate) => Ok(Outcome::Duplicate),
        Ok(pb::Outcome::Ignored) => Ok(Outcome::Ignored),
        Ok(pb::Outcome::Rejected) => Ok(Outcome::Rejected),
        Ok(pb::Outcome::Stale) => Ok(Outcome::Stale),
        Ok(pb::Outcome::Unspecified) | Err(_) => bad(field, format!("unknown outcome {v}")),
    }
}

fn kind_to(k: EscalationKind) -> i32 {
    (match k {
        EscalationKind::TierReached => pb::EscalationKind::TierReached,
        EscalationKind::Breached => pb::EscalationKind::Breached,
        EscalationKind::Resolved => pb::EscalationKind::Resolved,
    }) as i32
}

fn kind_from(v: i32, field: &str) -> R<EscalationKind> {
    match pb::EscalationKind::try_from(v) {
        Ok(pb::EscalationKind::TierReached) => Ok(EscalationKind::TierReached),
        Ok(pb::EscalationKind::Breached) => Ok(EscalationKind::Breached),
        Ok(pb::EscalationKind::Resolved) => Ok(EscalationKind::Resolved),
        Ok(pb::EscalationKind::Unspecified) | Err(_) => {
            bad(field, format!("unknown escalation kind {v}"))
        }
    }
}

fn severity_to(s: Severity) -> i32 {
    (match s {
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }) as i32
}

fn severity_from(v: i32, field: &str) -> R<Severity> {
    match pb::Severity::try_from(v) {
        Ok(pb::Severity::Low) => Ok(Severity::Low),
        Ok(pb::Severity::Medium) => Ok(Severity::Medium),
        Ok(pb::Severity::High) => Ok(Severity::High),
        Ok(pb::Severity::Critical) => Ok(Severity::Critical),
        Ok(pb::Severity::Unspecified) | Err(_) => bad(field, format!("unknown severity {v}")),
    }
}

fn end_to(e: SlaEnd) -> i32 {
    (match e {
        SlaEnd::Met => pb::SlaEnd::Met,
        SlaEnd::Late => pb::SlaEnd::Late,
        SlaEnd::Cancelled => pb::SlaEnd::Cancelled,
    }) as i32
}

fn end_from(v: i32, field: &str) -> R<SlaEnd> {
    match pb::SlaEnd::try_from(v) {
        Ok(pb::SlaEnd::Met) => Ok(SlaEnd::Met),
        Ok(pb::SlaEnd::Late) => Ok(SlaEnd::Late),
        Ok(pb::SlaEnd::Cancelled) => Ok(SlaEnd::Cancelled),
        Ok(pb::SlaEnd::Unspecified) | Err(_) => bad(field, format!("unknown SLA end {v}")),
    }
}

// ------------------------------------------------------------ shared parts

fn event_ref_record(e: &EventRef) -> pb::EventRef {
    pb::EventRef {
        source: e.source.0.into(),
        event_type: e.event_type.0.into(),
        id: e.id.to_string(),
        occurred_at: e.occurred_at.0,
    }
}

fn event_ref(r: pb::EventRef) -> R<EventRef> {
    Ok(EventRef {
        source: SourceId(id(r.source, "source")?),
        event_type: EventTypeId(id(r.event_type, "event_type")?),
        id: r.id.into(),
        occurred_at: Timestamp(r.occurred_at),
    })
}

fn escalation_record_of(e: &Escalation) -> pb::Escalation {
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

fn escalation(r: pb::Escalation) -> R<Escalation> {
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

// --------------------------------------------------------------- customers

fn customer_record(s: &CustomerState) -> pb::CustomerRecord {
    let mut seen: Vec<pb::SeenId> = s
        .seen
        .iter()
        .map(|(id, sources)| pb::SeenId {
            id: id.to_owned(),
            sources: sources.iter().map(|(s, _)| s.0.into()).collect(),
            received_at: sources.iter().map(|(_, at)| at.0).collect(),
        })
        .collect();
    seen.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    pb::CustomerRecord {
        customer: s.customer.to_string(),
        exists: s.exists,
        market: s.market.0.into(),
        market_code: s.market_code.to_string(),
        model_version: s.model_version,
        created_at: s.created_at.0,
        regions: s
            .core
            .regions
            .iter()
            .map(|r| pb::RegionSlot {
                state: r.state.0.into(),
                since: r.since.map(|t| t.0),
            })
            .collect(),
        proofs: s
            .core
            .proofs
            .iter()
            .map(|p| pb::ProofSlot {
                established_by: p.by.as_ref().map(event_ref_record),
                latest: p.latest.map(|t| t.0),
            })
            .collect(),
        slas: s.core.slas.iter().map(sla_slot_record).collect(),
        last_seen: s
            .core
            .last_seen
            .iter()
            .map(|t| pb::LastSeen { at: t.map(|t| t.0) })
            .collect(),
        seen,
        timeline: s.timeline.iter().map(timeline_record).collect(),
        resolved: s
            .resolved
            .iter()
            .map(|r| pb::ResolvedEscalation {
                sla: r.sla.0.into(),
                instance: r.instance,
                tier: r.tier.into(),
                repeat: r.repeat,
                team: r.team.0.into(),
                severity: severity_to(r.severity),
            })
            .collect(),
    }
}

fn sla_slot_record(s: &SlaSlot) -> pb::SlaSlot {
    pb::SlaSlot {
        started: s.started,
        running: s.running.as_ref().map(|i| pb::Instance {
            number: i.number,
            started_at: i.started_at.0,
            deadline: i.deadline.0,
            breached: i.breached,
            tiers: i
                .tiers
                .iter()
                .map(|t| pb::TierSlot {
                    next: t.next.map(|t| t.0),
                    repeat: t.repeat,
                })
                .collect(),
            breach_mark: i.breach_mark.map(|t| t.0),
            fired: i
                .fired
                .iter()
                .map(|f| pb::FiredEscalation {
                    escalation: Some(escalation_record_of(&f.escalation)),
                    acknowledged: f.acknowledged,
                })
                .collect(),
        }),
        last_end: s.last_end.map(|(instance, end, at)| pb::SlaEndRecord {
            instance,
            end: end_to(end),
            at: at.0,
        }),
    }
}

fn timeline_record(e: &TimelineEntry) -> pb::TimelineEntry {
    use pb::timeline_entry::Entry;
    let entry = match e {
        TimelineEntry::Event {
            received_at,
            event,
            outcome,
            reason,
        } => Entry::Event(pb::TimelineEvent {
            received_at: received_at.0,
            event: Some(event_ref_record(event)),
            outcome: outcome_to(*outcome),
            reason: reason.as_deref().map(str::to_owned),
        }),
        TimelineEntry::Denied {
            at,
            team,
            action,
            reason,
        } => Entry::Denied(pb::TimelineDenied {
            at: at.0,
            team: team.to_string(),
            action: action.to_string(),
            reason: reason.to_string(),
        }),
        TimelineEntry::Escalation(e) => Entry::Escalation(escalation_record_of(e)),
        TimelineEntry::SlaEnded {
            at,
            sla,
            instance,
            end,
        } => Entry::SlaEnded(pb::TimelineSlaEnded {
            at: at.0,
            sla: sla.0.into(),
            instance: *instance,
            end: end_to(*end),
        }),
        TimelineEntry::Acknowledged {
            at,
            sla,
            instance,
            tier,
            repeat,
            team,
        } => Entry::Acknowledged(pb::TimelineAcknowledged {
            at: at.0,
            sla: sla.0.into(),
            instance: *instance,
            tier: (*tier).into(),
            repeat: *repeat,
            team: team.0.into(),
        }),
    };
    pb::TimelineEntry { entry: Some(entry) }
}

fn customer_state(r: pb::CustomerRecord) -> R<CustomerState> {
    let regions = each(r.regions, "regions", |s| {
        Ok(RegionSlot {
            state: StateId(id(s.state, "state")?),
            since: ts(s.since),
        })
    })?;
    let proofs = each(r.proofs, "proofs", |p| {
        Ok(ProofSlot {
            by: p
                .established_by
                .map(event_ref)
                .transpose()
                .at("established_by")?,
            latest: ts(p.latest),
        })
    })?;
    let slas = each(r.slas, "slas", sla_slot)?;
    let last_seen = r.last_seen.into_iter().map(|l| ts(l.at)).collect();
    let mut seen = SeenKeys::default();
    for (i, s) in r.seen.into_iter().enumerate() {
        let event_id: std::sync::Arc<str> = s.id.into();
        for (j, source) in s.sources.into_iter().enumerate() {
            let source = id(source, &format!("sources[{j}]")).at(format_args!("seen[{i}]"))?;
            let at = s.received_at.get(j).copied().unwrap_or(0);
            seen.insert(SourceId(source), &event_id, Timestamp(at));
        }
    }
    let timeline = each(r.timeline, "timeline", timeline_entry)?;
    let resolved = each(r.resolved, "resolved", |e| {
        Ok(ResolvedEscalation {
            sla: SlaId(id(e.sla, "sla")?),
            instance: e.instance,
            tier: id(e.tier, "tier")?,
            repeat: e.repeat,
            team: TeamId(id(e.team, "team")?),
            severity: severity_from(e.severity, "severity")?,
        })
    })?;
    Ok(CustomerState {
        customer: r.customer.into(),
        exists: r.exists,
        market: MarketId(id(r.market, "market")?),
        market_code: r.market_code.into(),
        model_version: r.model_version,
        created_at: Timestamp(r.created_at),
        core: Core {
            regions,
            proofs,
            slas,
            last_seen,
        },
        seen,
        timeline: VecDeque::from(timeline),
        resolved: VecDeque::from(resolved),
    })
}

fn sla_slot(s: pb::SlaSlot) -> R<SlaSlot> {
    let running = match s.running {
        None => None,
        Some(i) => Some(Instance {
            number: i.number,
            started_at: Timestamp(i.started_at),
            deadline: Timestamp(i.deadline),
            breached: i.breached,
            tiers: i
                .tiers
                .into_iter()
                .map(|t| TierSlot {
                    next: ts(t.next),
                    repeat: t.repeat,
                })
                .collect(),
            breach_mark: ts(i.breach_mark),
            fired: each(i.fired, "fired", |f| {
                Ok(FiredEscalation {
                    escalation: escalation(required(f.escalation, "escalation")?)
                        .at("escalation")?,
                    acknowledged: f.acknowledged,
                })
            })
            .at("running")?,
        }),
    };
    let last_end = s
        .last_end
        .map(|e| -> R<_> { Ok((e.instance, end_from(e.end, "end")?, Timestamp(e.at))) })
        .transpose()
        .at("last_end")?;
    Ok(SlaSlot {
        started: s.started,
        running,
        last_end,
    })
}

fn timeline_entry(e: pb::TimelineEntry) -> R<TimelineEntry> {
    use pb::timeline_entry::Entry;
    Ok(match required(e.entry, "entry")? {
        Entry::Event(e) => TimelineEntry::Event {
            received_at: Timestamp(e.received_at),
            event: event_ref(required(e.event, "event")?).at("event")?,
            outcome: outcome_from(e.outcome, "outcome")?,
            reason: e.reason.map(Into::into),
        },
        Entry::Denied(d) => TimelineEntry::Denied {
            at: Timestamp(d.at),
            team: d.team.into(),
            action: d.action.into(),
            reason: d.reason.into(),
        },
        Entry::Escalation(e) => TimelineEntry::Escalation(escalation(e).at("escalation")?),
        Entry::SlaEnded(s) => TimelineEntry::SlaEnded {
            at: Timestamp(s.at),
            sla: SlaId(id(s.sla, "sla")?),
            instance: s.instance,
            end: end_from(s.end, "end")?,
        },
        Entry::Acknowledged(a) => TimelineEntry::Acknowledged {
            at: Timestamp(a.at),
            sla: SlaId(id(a.sla, "sla")?),
            instance: a.instance,
            tier: id(a.tier, "tier")?,
            repeat: a.repeat,
            team: TeamId(id(a.team, "team")?),
        },
    })
}

// ------------------------------------------------------------------- facts

fn fact_record(f: &Fact) -> pb::FactRecord {
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
        } => F::SlaEnded(pb::SlaEnded {
            sla: sla.0.into(),
            instance: *instance,
            end: end_to(*end),
            at: at.0,
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
    })
}

// ------------------------------------------------------------- escalations

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

#[cfg(test)]
mod tests;
