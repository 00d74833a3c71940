//! `CustomerRecord`: a customer's whole state (region, proof and SLA slots,
//! last-seen times, seen event ids, the timeline, resolved escalations).

use std::collections::VecDeque;

use prost::Message;

use super::escalation::{escalation, escalation_record_of};
use super::{
    At, Bad, R, each, end_from, end_to, event_ref, event_ref_record, id, outcome_from, outcome_to,
    required, severity_from, severity_to, ts,
};
use crate::engine::model::{Duration, MarketId, RegionId, SlaId, SourceId, StateId, TeamId};
use crate::engine::{
    Core, CustomerState, FiredEscalation, Instance, PauseSpan, ProofSlot, RegionSlot,
    ResolvedEscalation, SeenKeys, SlaSlot, TierSlot, TimelineEntry, Timestamp,
};
use crate::store::{Result, StoreError, pb};

/// The bytes of a `CustomerRecord`.
pub fn encode_customer(s: &CustomerState) -> Vec<u8> {
    encode_customer_at(s, 0)
}

/// The bytes of a `CustomerRecord` that also says the seq of the
/// customer's last fact (0: not said).
///
/// Written straight from the state, field by field, with the bytes prost
/// writes for the same record (fields in number order, proto3 defaults
/// left out, each repeated message as its own tagged field; a test holds
/// the two equal for every kind of slot): the record is written on every
/// event, and building the owned `pb::CustomerRecord` first cost a
/// string or a vector per seen event id, per timeline line and per slot.
/// Slots that own no text (regions, last seen, resolved escalations) go
/// through their `pb` message on the stack; proofs, SLAs and the
/// timeline through theirs one at a time.
pub fn encode_customer_at(s: &CustomerState, last_fact_seq: u64) -> Vec<u8> {
    use prost::encoding::{self as enc, message};
    let mut out = Vec::with_capacity(
        128 + 32 * s.seen.len() + 64 * (s.timeline.len() + s.core.slas.len() + s.core.proofs.len()),
    );
    let buf = &mut out;
    put_str(1, &s.customer, buf);
    if s.exists {
        enc::bool::encode(2, &s.exists, buf);
    }
    let market = u32::from(s.market.0);
    if market != 0 {
        enc::uint32::encode(3, &market, buf);
    }
    put_str(4, &s.market_code, buf);
    if s.model_version != 0 {
        enc::uint32::encode(5, &s.model_version, buf);
    }
    if s.created_at.0 != 0 {
        enc::sint64::encode(6, &s.created_at.0, buf);
    }
    for r in &s.core.regions {
        message::encode(7, &region_slot_record(r), buf);
    }
    for p in &s.core.proofs {
        message::encode(8, &proof_slot_record(p), buf);
    }
    for slot in &s.core.slas {
        message::encode(9, &sla_slot_record(slot), buf);
    }
    for at in &s.core.last_seen {
        message::encode(
            10,
            &pb::LastSeen {
                at: at.map(|t| t.0),
            },
            buf,
        );
    }
    // `SeenId { id, sources (packed), received_at (packed) }`, by id.
    let mut seen: Vec<(&str, &[(SourceId, Timestamp)])> = s.seen.iter().collect();
    seen.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut body = Vec::with_capacity(64);
    for (id, sources) in seen {
        body.clear();
        put_str(1, id, &mut body);
        put_packed(2, sources.iter().map(|(s, _)| u64::from(s.0)), &mut body);
        put_packed(3, sources.iter().map(|(_, at)| zigzag(at.0)), &mut body);
        enc::encode_key(11, enc::WireType::LengthDelimited, buf);
        enc::encode_varint(body.len() as u64, buf);
        buf.extend_from_slice(&body);
    }
    for e in &s.timeline {
        message::encode(12, &timeline_record(e), buf);
    }
    for r in &s.resolved {
        message::encode(13, &resolved_record(r), buf);
    }
    if last_fact_seq != 0 {
        enc::uint64::encode(14, &last_fact_seq, buf);
    }
    out
}

/// A proto3 `string` field (left out when empty, as prost does).
fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    use prost::encoding as enc;
    if !s.is_empty() {
        enc::encode_key(tag, enc::WireType::LengthDelimited, buf);
        enc::encode_varint(s.len() as u64, buf);
        buf.extend_from_slice(s.as_bytes());
    }
}

/// A packed repeated varint field of already widened (and, for `sint`,
/// zigzagged) values (left out when empty, as prost does).
fn put_packed(tag: u32, values: impl Iterator<Item = u64> + Clone, buf: &mut Vec<u8>) {
    use prost::encoding as enc;
    let len: usize = values.clone().map(enc::encoded_len_varint).sum();
    if len == 0 {
        return;
    }
    enc::encode_key(tag, enc::WireType::LengthDelimited, buf);
    enc::encode_varint(len as u64, buf);
    for v in values {
        enc::encode_varint(v, buf);
    }
}

/// A `sint64` as its varint.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// A customer's state from the bytes of its `CustomerRecord`.
pub fn decode_customer(bytes: &[u8]) -> Result<CustomerState> {
    decode_customer_at(bytes).map(|(state, _)| state)
}

/// A customer's state and the seq of its last fact (0 when the record
/// does not say: written by an older build, or by [`encode_customer`]).
pub fn decode_customer_at(bytes: &[u8]) -> Result<(CustomerState, u64)> {
    let record = pb::CustomerRecord::decode(bytes)
        .map_err(|e| StoreError::corrupt("customer record", e.to_string()))?;
    let what = format!("customer record of `{}`", record.customer);
    let seq = record.last_fact_seq;
    let state = customer_state(record).map_err(|Bad(reason)| StoreError::corrupt(what, reason))?;
    Ok((state, seq))
}

/// The record as prost's own message: what [`encode_customer_at`] writes,
/// built the slow way (the tests compare the two, and corrupt it).
#[cfg(test)]
pub(super) fn customer_record(s: &CustomerState) -> pb::CustomerRecord {
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
        regions: s.core.regions.iter().map(region_slot_record).collect(),
        proofs: s.core.proofs.iter().map(proof_slot_record).collect(),
        slas: s.core.slas.iter().map(sla_slot_record).collect(),
        last_seen: s
            .core
            .last_seen
            .iter()
            .map(|t| pb::LastSeen { at: t.map(|t| t.0) })
            .collect(),
        seen,
        timeline: s.timeline.iter().map(timeline_record).collect(),
        resolved: s.resolved.iter().map(resolved_record).collect(),
        last_fact_seq: 0,
    }
}

fn region_slot_record(r: &RegionSlot) -> pb::RegionSlot {
    pb::RegionSlot {
        state: r.state.0.into(),
        since: r.since.map(|t| t.0),
    }
}

fn proof_slot_record(p: &ProofSlot) -> pb::ProofSlot {
    pb::ProofSlot {
        established_by: p.by.as_ref().map(event_ref_record),
        latest: p.latest.map(|t| t.0),
    }
}

fn resolved_record(r: &ResolvedEscalation) -> pb::ResolvedEscalation {
    pb::ResolvedEscalation {
        sla: r.sla.0.into(),
        instance: r.instance,
        tier: r.tier.into(),
        repeat: r.repeat,
        team: r.team.0.into(),
        severity: severity_to(r.severity),
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
                    held: t.held,
                })
                .collect(),
            breach_mark: i.breach_mark.map(|t| t.0),
            original_deadline: Some(i.original_deadline.0),
            pauses: pause_spans_record(&i.pauses),
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
        pause_log: s
            .pause_log
            .iter()
            .map(|(region, from, to)| pb::PauseSpan {
                from: from.0,
                to: to.map(|t| t.0),
                region: region.0.into(),
            })
            .collect(),
    }
}

fn pause_spans_record(spans: &[PauseSpan]) -> Vec<pb::PauseSpan> {
    spans
        .iter()
        .map(|(from, to)| pb::PauseSpan {
            from: from.0,
            to: to.map(|t| t.0),
            region: 0,
        })
        .collect()
}

fn pause_spans(spans: Vec<pb::PauseSpan>) -> Vec<PauseSpan> {
    spans
        .into_iter()
        .map(|p| (Timestamp(p.from), ts(p.to)))
        .collect()
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
            elapsed,
        } => Entry::SlaEnded(pb::TimelineSlaEnded {
            at: at.0,
            sla: sla.0.into(),
            instance: *instance,
            end: end_to(*end),
            elapsed: elapsed.0,
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
        TimelineEntry::Migrated { at, from, to } => Entry::Migrated(pb::Migrated {
            from: *from,
            to: *to,
            at: at.0,
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
            original_deadline: Timestamp(i.original_deadline.unwrap_or(i.deadline)),
            pauses: pause_spans(i.pauses),
            breached: i.breached,
            tiers: i
                .tiers
                .into_iter()
                .map(|t| TierSlot {
                    next: ts(t.next),
                    repeat: t.repeat,
                    held: t.held,
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
        pause_log: s
            .pause_log
            .into_iter()
            .map(|p| {
                Ok((
                    RegionId(id(p.region, "region")?),
                    Timestamp(p.from),
                    ts(p.to),
                ))
            })
            .collect::<R<_>>()
            .at("pause_log")?,
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
            elapsed: Duration(s.elapsed),
        },
        Entry::Acknowledged(a) => TimelineEntry::Acknowledged {
            at: Timestamp(a.at),
            sla: SlaId(id(a.sla, "sla")?),
            instance: a.instance,
            tier: id(a.tier, "tier")?,
            repeat: a.repeat,
            team: TeamId(id(a.team, "team")?),
        },
        Entry::Migrated(m) => TimelineEntry::Migrated {
            at: Timestamp(m.at),
            from: m.from,
            to: m.to,
        },
    })
}
