//! `FactRecord`: generated facts and one of every fact kind round-trip.

use proptest::prelude::*;

use super::*;
use crate::engine::model::{Duration, MarketId, ProofId, RegionId, StateId};
use crate::store::codec::encode_fact;

fn fact() -> impl Strategy<Value = Fact> {
    prop_oneof![
        (any::<u16>(), text(), any::<u32>(), ts()).prop_map(|(m, code, v, at)| Fact::Created {
            market: MarketId(m),
            market_code: code,
            model_version: v,
            at,
        }),
        (event_ref(), ts(), outcome(), proptest::option::of(text())).prop_map(
            |(event, received_at, outcome, reason)| Fact::EventRecorded {
                event,
                received_at,
                outcome,
                reason,
            }
        ),
        (any::<u16>(), event_ref()).prop_map(|(p, by)| Fact::ProofEstablished {
            proof: ProofId(p),
            by,
        }),
        (any::<u16>(), ts(), any::<bool>()).prop_map(|(p, at, held)| Fact::ProofRevoked {
            proof: ProofId(p),
            at,
            held,
        }),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            ts(),
            any::<bool>()
        )
            .prop_map(|(r, from, to, since, automatic)| Fact::RegionMoved {
                region: RegionId(r),
                from: StateId(from),
                to: StateId(to),
                since,
                automatic,
            }),
        (any::<u16>(), ts()).prop_map(|(r, since)| Fact::RegionRenewed {
            region: RegionId(r),
            since,
        }),
        (any::<u16>(), any::<u32>(), ts(), ts(), ts()).prop_map(
            |(sla, instance, started_at, deadline, attached_at)| Fact::SlaStarted {
                sla: SlaId(sla),
                instance,
                started_at,
                deadline,
                attached_at,
            }
        ),
        (any::<u16>(), any::<u32>(), ts()).prop_map(|(sla, instance, at)| Fact::SlaPaused {
            sla: SlaId(sla),
            instance,
            at,
        }),
        (any::<u16>(), any::<u32>(), ts(), ts()).prop_map(|(sla, instance, at, attached_at)| {
            Fact::SlaResumed {
                sla: SlaId(sla),
                instance,
                at,
                attached_at,
            }
        }),
        escalation().prop_map(Fact::Escalated),
        (any::<u16>(), any::<u32>(), ts()).prop_map(|(sla, instance, at)| Fact::Breached {
            sla: SlaId(sla),
            instance,
            at,
        }),
        (any::<u16>(), any::<u32>(), end(), ts(), any::<i64>()).prop_map(
            |(sla, instance, end, at, elapsed)| Fact::SlaEnded {
                sla: SlaId(sla),
                instance,
                end,
                at,
                elapsed: Duration(elapsed),
            }
        ),
        (text(), text(), text(), ts()).prop_map(|(team, action, reason, at)| {
            Fact::AuthorizationDenied {
                team,
                action,
                reason,
                at,
            }
        }),
        (
            (any::<u16>(), any::<u32>(), any::<u16>(), any::<u32>()),
            (any::<u16>(), text(), ts())
        )
            .prop_map(|((sla, instance, tier, repeat), (team, note, at))| {
                Fact::Acknowledged {
                    sla: SlaId(sla),
                    instance,
                    tier,
                    repeat,
                    team: TeamId(team),
                    note,
                    at,
                }
            }),
        (any::<u32>(), any::<u32>(), ts()).prop_map(|(from, to, at)| Fact::Migrated {
            from,
            to,
            at
        }),
    ]
}

// ------------------------------------------------------------ round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn facts_round_trip(f in fact()) {
        prop_assert_eq!(decode_fact(&encode_fact(&f)).expect("decodes"), f);
    }
}

/// The fact kind's name; no `_ =>`, so a new `Fact` variant fails to
/// compile here until `every_fact_kind` covers it.
fn fact_kind(f: &Fact) -> &'static str {
    match f {
        Fact::Created { .. } => "created",
        Fact::EventRecorded { .. } => "event_recorded",
        Fact::ProofEstablished { .. } => "proof_established",
        Fact::ProofRevoked { .. } => "proof_revoked",
        Fact::RegionMoved { .. } => "region_moved",
        Fact::RegionRenewed { .. } => "region_renewed",
        Fact::SlaStarted { .. } => "sla_started",
        Fact::SlaPaused { .. } => "sla_paused",
        Fact::SlaResumed { .. } => "sla_resumed",
        Fact::Escalated(_) => "escalated",
        Fact::Breached { .. } => "breached",
        Fact::SlaEnded { .. } => "sla_ended",
        Fact::AuthorizationDenied { .. } => "authorization_denied",
        Fact::Acknowledged { .. } => "acknowledged",
        Fact::Migrated { .. } => "migrated",
    }
}

#[test]
fn every_fact_kind_round_trips() {
    let facts = vec![
        Fact::Created {
            market: MarketId(2),
            market_code: "DE".into(),
            model_version: 7,
            at: Timestamp(1),
        },
        Fact::EventRecorded {
            event: ev("e1", 2),
            received_at: Timestamp(3),
            outcome: Outcome::Stale,
            reason: Some("lifecycle entered `active` later".into()),
        },
        Fact::EventRecorded {
            event: ev("", -2),
            received_at: Timestamp(3),
            outcome: Outcome::Applied,
            reason: None,
        },
        Fact::ProofEstablished {
            proof: ProofId(3),
            by: ev("e2", 4),
        },
        Fact::ProofRevoked {
            proof: ProofId(3),
            at: Timestamp(5),
            held: true,
        },
        Fact::RegionMoved {
            region: RegionId(1),
            from: StateId(0),
            to: StateId(4),
            since: Timestamp(6),
            automatic: true,
        },
        Fact::RegionRenewed {
            region: RegionId(1),
            since: Timestamp(7),
        },
        Fact::SlaStarted {
            sla: SlaId(1),
            instance: 3,
            started_at: Timestamp(8),
            deadline: Timestamp(9),
            attached_at: Timestamp(10),
        },
        Fact::SlaPaused {
            sla: SlaId(1),
            instance: 3,
            at: Timestamp(10),
        },
        Fact::SlaResumed {
            sla: SlaId(1),
            instance: 3,
            at: Timestamp(11),
            attached_at: Timestamp(12),
        },
        Fact::Escalated(esc(EscalationKind::TierReached)),
        Fact::Escalated(esc(EscalationKind::Breached)),
        Fact::Escalated(esc(EscalationKind::Resolved)),
        Fact::Breached {
            sla: SlaId(1),
            instance: 3,
            at: Timestamp(11),
        },
        Fact::SlaEnded {
            sla: SlaId(1),
            instance: 3,
            end: SlaEnd::Cancelled,
            at: Timestamp(12),
            elapsed: Duration(3),
        },
        Fact::AuthorizationDenied {
            team: "marketing".into(),
            action: "nurture".into(),
            reason: "lifecycle is trial".into(),
            at: Timestamp(13),
        },
        Fact::Acknowledged {
            sla: SlaId(1),
            instance: 3,
            tier: 0,
            repeat: 0,
            team: TeamId(4),
            note: "on it".into(),
            at: Timestamp(14),
        },
        Fact::Migrated {
            from: 3,
            to: 4,
            at: Timestamp(15),
        },
    ];
    let mut kinds: Vec<&str> = facts.iter().map(fact_kind).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), 15, "every Fact variant is covered: {kinds:?}");
    for f in facts {
        assert_eq!(decode_fact(&encode_fact(&f)).expect("decodes"), f);
    }
}
