//! `CustomerRecord`: generated and hand-built states round-trip, and a bad
//! id names its field's whole path.

use std::collections::VecDeque;

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::engine::model::{Duration, MarketId, RegionId, StateId};
use crate::engine::{
    Core, CustomerState, FiredEscalation, Instance, ProofSlot, RegionSlot, ResolvedEscalation,
    SeenKeys, SlaSlot, TierSlot, TimelineEntry,
};
use crate::store::codec::{decode_customer, encode_customer, encode_customer_at};

fn instance() -> impl Strategy<Value = Instance> {
    (
        (any::<u32>(), ts(), ts(), any::<bool>()),
        vec(
            (proptest::option::of(ts()), any::<u32>(), any::<bool>())
                .prop_map(|(next, repeat, held)| TierSlot { next, repeat, held }),
            0..4,
        ),
        (
            proptest::option::of(ts()),
            ts(),
            vec((ts(), proptest::option::of(ts())), 0..3),
        ),
        vec(
            (escalation(), any::<bool>()).prop_map(|(escalation, acknowledged)| FiredEscalation {
                escalation,
                acknowledged,
            }),
            0..3,
        ),
    )
        .prop_map(
            |(
                (number, started_at, deadline, breached),
                tiers,
                (breach_mark, original_deadline, pauses),
                fired,
            )| Instance {
                number,
                started_at,
                deadline,
                original_deadline,
                pauses,
                breached,
                tiers,
                breach_mark,
                fired,
            },
        )
}

fn timeline_entry() -> impl Strategy<Value = TimelineEntry> {
    prop_oneof![
        (ts(), event_ref(), outcome(), proptest::option::of(text())).prop_map(
            |(received_at, event, outcome, reason)| TimelineEntry::Event {
                received_at,
                event,
                outcome,
                reason,
            }
        ),
        (ts(), text(), text(), text()).prop_map(|(at, team, action, reason)| {
            TimelineEntry::Denied {
                at,
                team,
                action,
                reason,
            }
        }),
        escalation().prop_map(TimelineEntry::Escalation),
        (ts(), any::<u16>(), any::<u32>(), end(), any::<i64>()).prop_map(
            |(at, sla, instance, end, elapsed)| TimelineEntry::SlaEnded {
                at,
                sla: SlaId(sla),
                instance,
                end,
                elapsed: Duration(elapsed),
            }
        ),
        (
            ts(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>()
        )
            .prop_map(|(at, sla, instance, tier, repeat, team)| {
                TimelineEntry::Acknowledged {
                    at,
                    sla: SlaId(sla),
                    instance,
                    tier,
                    repeat,
                    team: TeamId(team),
                }
            }),
        (ts(), any::<u32>(), any::<u32>()).prop_map(|(at, from, to)| TimelineEntry::Migrated {
            at,
            from,
            to
        }),
    ]
}

fn customer_state() -> impl Strategy<Value = CustomerState> {
    let head = (
        text(),
        any::<bool>(),
        any::<u16>(),
        text(),
        any::<u32>(),
        ts(),
    );
    let core = (
        vec(
            (any::<u16>(), proptest::option::of(ts())).prop_map(|(s, since)| RegionSlot {
                state: StateId(s),
                since,
            }),
            0..4,
        ),
        vec(
            (
                proptest::option::of(event_ref()),
                proptest::option::of(ts()),
            )
                .prop_map(|(by, latest)| ProofSlot { by, latest }),
            0..4,
        ),
        vec(
            (
                any::<u32>(),
                proptest::option::of(instance()),
                proptest::option::of((any::<u32>(), end(), ts())),
                vec(
                    (any::<u16>(), ts(), proptest::option::of(ts()))
                        .prop_map(|(r, from, to)| (RegionId(r), from, to)),
                    0..3,
                ),
            )
                .prop_map(|(started, running, last_end, pause_log)| SlaSlot {
                    started,
                    running,
                    last_end,
                    pause_log,
                }),
            0..3,
        ),
        vec(proptest::option::of(ts()), 0..5),
    )
        .prop_map(|(regions, proofs, slas, last_seen)| Core {
            regions,
            proofs,
            slas,
            last_seen,
        });
    let tail = (
        vec((any::<u16>(), text()), 0..6),
        vec(timeline_entry(), 0..6),
        vec(
            (
                any::<u16>(),
                any::<u32>(),
                any::<u16>(),
                any::<u32>(),
                any::<u16>(),
                severity(),
            )
                .prop_map(|(sla, instance, tier, repeat, team, severity)| {
                    ResolvedEscalation {
                        sla: SlaId(sla),
                        instance,
                        tier,
                        repeat,
                        team: TeamId(team),
                        severity,
                    }
                }),
            0..3,
        ),
    );
    (head, core, tail).prop_map(
        |(
            (customer, exists, market, market_code, model_version, created_at),
            core,
            (seen_keys, timeline, resolved),
        )| {
            let mut seen = SeenKeys::default();
            for (k, (source, id)) in seen_keys.iter().enumerate() {
                let at = Timestamp(-5 + k as i64 * 1_000_003);
                seen.insert(SourceId(*source), &std::sync::Arc::from(&**id), at);
            }
            CustomerState {
                customer,
                exists,
                market: MarketId(market),
                market_code,
                model_version,
                created_at,
                core,
                seen,
                timeline: VecDeque::from(timeline),
                resolved: VecDeque::from(resolved),
            }
        },
    )
}

// ------------------------------------------------------------ round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn customer_states_round_trip(s in customer_state()) {
        let bytes = encode_customer(&s);
        let back = decode_customer(&bytes).expect("decodes");
        prop_assert_eq!(&back, &s);
        // Deterministic: the same state, the same bytes.
        prop_assert_eq!(encode_customer(&back), bytes);
    }

    /// The record is written field by field: exactly the bytes prost
    /// writes for the same `pb::CustomerRecord`, so any build (and any
    /// protobuf reader) reads it alike.
    #[test]
    fn customer_records_are_the_bytes_prost_writes(s in customer_state(), seq in any::<u64>()) {
        prop_assert_eq!(encode_customer_at(&s, seq), prost_bytes(&s, seq));
        prop_assert_eq!(encode_customer_at(&s, 0), prost_bytes(&s, 0));
    }
}

fn prost_bytes(s: &CustomerState, last_fact_seq: u64) -> Vec<u8> {
    let mut r = customer_record(s);
    r.last_fact_seq = last_fact_seq;
    r.encode_to_vec()
}

#[test]
fn every_kind_of_slot_and_an_empty_state_are_the_bytes_prost_writes() {
    let full = full_state();
    assert_eq!(encode_customer_at(&full, 7), prost_bytes(&full, 7));
    let empty = CustomerState {
        customer: "".into(),
        exists: false,
        market: MarketId(0),
        market_code: "".into(),
        model_version: 0,
        created_at: Timestamp(0),
        ..full
    };
    let empty = CustomerState {
        core: Core {
            regions: vec![],
            proofs: vec![],
            slas: vec![],
            last_seen: vec![],
        },
        seen: SeenKeys::default(),
        timeline: VecDeque::new(),
        resolved: VecDeque::new(),
        ..empty
    };
    assert_eq!(encode_customer_at(&empty, 0), prost_bytes(&empty, 0));
    assert!(encode_customer_at(&empty, 0).is_empty());
}

/// A state with every field set to something other than its default.
pub(super) fn full_state() -> CustomerState {
    let mut seen = SeenKeys::default();
    seen.insert(SourceId(1), &"e1".into(), Timestamp(10));
    seen.insert(SourceId(0), &"e1".into(), Timestamp(-20));
    seen.insert(SourceId(1), &"e2".into(), Timestamp(30));
    CustomerState {
        customer: "c:1\0é".into(),
        exists: true,
        market: MarketId(1),
        market_code: "DE".into(),
        model_version: 3,
        created_at: Timestamp(-1),
        core: Core {
            regions: vec![
                RegionSlot {
                    state: StateId(2),
                    since: Some(Timestamp(5)),
                },
                RegionSlot {
                    state: StateId(0),
                    since: None,
                },
            ],
            proofs: vec![
                ProofSlot {
                    by: Some(ev("e1", 4)),
                    latest: Some(Timestamp(4)),
                },
                ProofSlot {
                    by: None,
                    latest: Some(Timestamp(6)),
                },
                ProofSlot::default(),
            ],
            slas: vec![
                SlaSlot {
                    started: 2,
                    running: Some(Instance {
                        number: 2,
                        started_at: Timestamp(10),
                        deadline: Timestamp(20),
                        original_deadline: Timestamp(18),
                        pauses: vec![(Timestamp(12), Some(Timestamp(14))), (Timestamp(16), None)],
                        breached: true,
                        tiers: vec![
                            TierSlot {
                                next: None,
                                repeat: 0,
                                held: true,
                            },
                            TierSlot {
                                next: Some(Timestamp(30)),
                                repeat: 4,
                                held: false,
                            },
                        ],
                        breach_mark: Some(Timestamp(20)),
                        fired: vec![FiredEscalation {
                            escalation: esc(EscalationKind::Breached),
                            acknowledged: true,
                        }],
                    }),
                    last_end: Some((1, SlaEnd::Missed, Timestamp(9))),
                    pause_log: vec![
                        (RegionId(0), Timestamp(3), Some(Timestamp(5))),
                        (RegionId(1), Timestamp(16), None),
                    ],
                },
                SlaSlot::default(),
            ],
            last_seen: vec![None, Some(Timestamp(4)), Some(Timestamp(i64::MIN))],
        },
        seen,
        timeline: VecDeque::from(vec![
            TimelineEntry::Event {
                received_at: Timestamp(4),
                event: ev("e1", 4),
                outcome: Outcome::Applied,
                reason: None,
            },
            TimelineEntry::Denied {
                at: Timestamp(5),
                team: "sales".into(),
                action: "call".into(),
                reason: "no".into(),
            },
            TimelineEntry::Escalation(esc(EscalationKind::Breached)),
            TimelineEntry::SlaEnded {
                at: Timestamp(9),
                sla: SlaId(0),
                instance: 1,
                end: SlaEnd::Missed,
                elapsed: Duration(7),
            },
            TimelineEntry::Acknowledged {
                at: Timestamp(11),
                sla: SlaId(0),
                instance: 2,
                tier: 1,
                repeat: 0,
                team: TeamId(4),
            },
            TimelineEntry::Migrated {
                at: Timestamp(12),
                from: 1,
                to: 2,
            },
        ]),
        resolved: VecDeque::from(vec![ResolvedEscalation {
            sla: SlaId(0),
            instance: 1,
            tier: 0,
            repeat: 0,
            team: TeamId(2),
            severity: Severity::Low,
        }]),
    }
}

#[test]
fn a_state_with_every_field_set_round_trips() {
    let s = full_state();
    let back = decode_customer(&encode_customer(&s)).expect("decodes");
    assert_eq!(back, s);
    assert!(back.seen.contains(SourceId(0), "e1") && back.seen.contains(SourceId(1), "e2"));
}

#[test]
fn an_id_too_large_names_its_field() {
    let mut r = customer_record(&full_state());
    r.slas[0].running.as_mut().expect("running").fired[0]
        .escalation
        .as_mut()
        .expect("escalation")
        .team = 70_000;
    let e = reason(decode_customer(&r.encode_to_vec()).expect_err("corrupt"));
    assert!(
        e.contains("customer record of `c:1\0é`")
            && e.contains("slas[0].running.fired[0].escalation.team: 70000"),
        "{e}"
    );
}
