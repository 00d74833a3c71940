//! The codec is lossless (encode then decode gives back the original, for
//! generated states and every fact kind), deterministic, and turns bad
//! bytes into `Corrupt` errors that name the field.
//!
//! A file per record family, as in the codec: [`customer`], [`fact`],
//! [`escalation`]. This file holds the strategies and fixtures they share
//! and the checks that cut across families (bad bytes, bad records).

mod customer;
mod escalation;
mod fact;

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

use super::customer::customer_record;
use super::fact::fact_record;
use super::{decode_customer, decode_escalation, decode_fact, pb};
use crate::engine::model::{EventTypeId, Severity, SlaId, SourceId, TeamId};
use crate::engine::{Escalation, EscalationKind, EventRef, Fact, Outcome, SlaEnd, Timestamp};
use crate::store::StoreError;
use customer::full_state;

// -------------------------------------------------------------- strategies

fn ts() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(Timestamp(i64::MIN)),
        Just(Timestamp(i64::MAX)),
        Just(Timestamp(0)),
        any::<i64>().prop_map(Timestamp),
    ]
}

fn text() -> impl Strategy<Value = Box<str>> {
    prop_oneof![Just(String::new()), "[a-z\\x00é:]{1,6}", any::<String>()].prop_map(Into::into)
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Applied),
        Just(Outcome::Duplicate),
        Just(Outcome::Ignored),
        Just(Outcome::Rejected),
        Just(Outcome::Stale),
    ]
}

fn kind() -> impl Strategy<Value = EscalationKind> {
    prop_oneof![
        Just(EscalationKind::TierReached),
        Just(EscalationKind::Breached),
        Just(EscalationKind::Resolved),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Low),
        Just(Severity::Medium),
        Just(Severity::High),
        Just(Severity::Critical),
    ]
}

fn end() -> impl Strategy<Value = SlaEnd> {
    prop_oneof![
        Just(SlaEnd::Met),
        Just(SlaEnd::Missed),
        Just(SlaEnd::Cancelled)
    ]
}

fn event_ref() -> impl Strategy<Value = EventRef> {
    (any::<u16>(), any::<u16>(), text(), ts()).prop_map(|(s, e, id, at)| EventRef {
        source: SourceId(s),
        event_type: EventTypeId(e),
        id: id.into(),
        occurred_at: at,
    })
}

fn escalation() -> impl Strategy<Value = Escalation> {
    (
        (
            kind(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
        ),
        (any::<u16>(), severity(), ts(), ts(), ts(), any::<bool>()),
    )
        .prop_map(
            |(
                (kind, sla, instance, tier, repeat),
                (team, severity, deadline, due, at, late_attach),
            )| Escalation {
                kind,
                sla: SlaId(sla),
                instance,
                tier,
                repeat,
                team: TeamId(team),
                severity,
                deadline,
                due,
                at,
                late_attach,
            },
        )
}

// ------------------------------------------------------------ round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode_customer(&bytes);
        let _ = decode_fact(&bytes);
        let _ = decode_escalation(&bytes);
    }
}

fn ev(id: &str, at: i64) -> EventRef {
    EventRef {
        source: SourceId(1),
        event_type: EventTypeId(2),
        id: id.into(),
        occurred_at: Timestamp(at),
    }
}

fn esc(kind: EscalationKind) -> Escalation {
    Escalation {
        kind,
        sla: SlaId(1),
        instance: 3,
        tier: u16::MAX,
        repeat: 2,
        team: TeamId(4),
        severity: Severity::Critical,
        deadline: Timestamp(-5),
        due: Timestamp(-4),
        at: Timestamp(-3),
        late_attach: true,
    }
}

// ------------------------------------------------------------ bad records

fn reason(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { what, reason } => format!("{what}: {reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn unknown_enums_and_missing_parts_are_corrupt() {
    let mut f = fact_record(&Fact::EventRecorded {
        event: ev("e", 1),
        received_at: Timestamp(1),
        outcome: Outcome::Applied,
        reason: None,
    });
    if let Some(pb::fact_record::Fact::EventRecorded(e)) = f.fact.as_mut() {
        e.outcome = 99;
    }
    let e = reason(decode_fact(&f.encode_to_vec()).expect_err("corrupt"));
    assert!(
        e.contains("event_recorded.outcome: unknown outcome 99"),
        "{e}"
    );

    let e = reason(decode_fact(&pb::FactRecord { fact: None }.encode_to_vec()).expect_err("x"));
    assert!(e.contains("fact: missing"), "{e}");

    let mut r = customer_record(&full_state());
    r.timeline[0].entry = None;
    let e = reason(decode_customer(&r.encode_to_vec()).expect_err("corrupt"));
    assert!(e.contains("timeline[0].entry: missing"), "{e}");

    let mut r = customer_record(&full_state());
    r.slas[0].last_end.as_mut().expect("ended").end = 0;
    let e = reason(decode_customer(&r.encode_to_vec()).expect_err("corrupt"));
    assert!(e.contains("slas[0].last_end.end: unknown SLA end 0"), "{e}");

    let e = reason(decode_customer(&[0xFF, 0xFF, 0xFF]).expect_err("corrupt"));
    assert!(e.starts_with("customer record: "), "{e}");
    // The message tells a person what to do.
    let msg = StoreError::corrupt("fact record", "x").to_string();
    assert!(msg.contains("restore"), "{msg}");
}
