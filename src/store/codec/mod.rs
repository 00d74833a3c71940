//! Conversions between engine types and the durable records of
//! `proto/handoff/v1/store.proto`: the one place that knows both.
//!
//! Encoding is total and deterministic (the same state gives the same
//! bytes). Decoding checks everything the engine relies on (ids fit their
//! 16-bit types, enums are known, required parts are present) and reports
//! the first problem as [`StoreError::Corrupt`] with the path of the field;
//! it never panics on bad bytes. Ids are not checked against a model: they
//! are the data directory's catalog ids (`engine::model::catalog`), the
//! ones the served model is renumbered to, so an edit of the model file
//! never shifts what a stored id means.
//!
//! A file per record family: `customer` (`CustomerRecord`: slots, seen
//! ids, timeline), `fact` (`FactRecord`: one fact of a customer's history),
//! `escalation` (the `Escalation` part and the escalation log's
//! `EscalationRecord`). This file holds what they share: the decode-error
//! helpers, the enum conversions and the `EventRef` part.

mod customer;
mod escalation;
mod fact;

use std::fmt;

use super::pb;
use crate::engine::model::{EventTypeId, Severity, SourceId};
use crate::engine::{EscalationKind, EventRef, Outcome, SlaEnd, Timestamp};

pub use customer::{decode_customer, decode_customer_at, encode_customer, encode_customer_at};
pub use escalation::{decode_escalation, encode_escalation};
pub use fact::{decode_fact, encode_fact};

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
        SlaEnd::Missed => pb::SlaEnd::Missed,
        SlaEnd::Cancelled => pb::SlaEnd::Cancelled,
    }) as i32
}

fn end_from(v: i32, field: &str) -> R<SlaEnd> {
    match pb::SlaEnd::try_from(v) {
        Ok(pb::SlaEnd::Met) => Ok(SlaEnd::Met),
        Ok(pb::SlaEnd::Missed) => Ok(SlaEnd::Missed),
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

#[cfg(test)]
mod tests;
