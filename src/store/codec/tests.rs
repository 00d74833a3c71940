//! The codec is lossless (encode then decode gives back the original, for
//! generated states and every fact kind), deterministic, and turns bad
//! bytes into `Corrupt` errors that name the field.

use std::collections::VecDeque;

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::engine::model::{
    self, Duration, Model, ModelSpec, Region, Sla, SlaStart, State, Tier, TierAt,
};

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
        Just(SlaEnd::Late),
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
        escalation().prop_map(Fact::Escalated),
        (any::<u16>(), any::<u32>(), ts()).prop_map(|(sla, instance, at)| Fact::Breached {
            sla: SlaId(sla),
            instance,
            at,
        }),
        (any::<u16>(), any::<u32>(), end(), ts()).prop_map(|(sla, instance, end, at)| {
            Fact::SlaEnded {
                sla: SlaId(sla),
                instance,
                end,
                at,
            }
        }),
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
    ]
}

fn instance() -> impl Strategy<Value = Instance> {
    (
        (any::<u32>(), ts(), ts(), any::<bool>()),
        vec(
            (proptest::option::of(ts()), any::<u32>())
                .prop_map(|(next, repeat)| TierSlot { next, repeat }),
            0..4,
        ),
        proptest::option::of(ts()),
        vec(
            (escalation(), any::<bool>()).prop_map(|(escalation, acknowledged)| FiredEscalation {
                escalation,
                acknowledged,
            }),
            0..3,
        ),
    )
        .prop_map(
            |((number, started_at, deadline, breached), tiers, breach_mark, fired)| Instance {
                number,
                started_at,
                deadline,
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
        (ts(), any::<u16>(), any::<u32>(), end()).prop_map(|(at, sla, instance, end)| {
            TimelineEntry::SlaEnded {
                at,
                sla: SlaId(sla),
                instance,
                end,
            }
        }),
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
            )
                .prop_map(|(started, running, last_end)| SlaSlot {
                    started,
                    running,
                    last_end,
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

fn entry() -> impl Strategy<Value = EscalationEntry> {
    (
        (text(), kind(), text(), text(), text(), any::<u32>()),
        (any::<u16>(), any::<u32>(), text(), severity(), ts(), ts()),
        (ts(), any::<bool>(), text(), vec((text(), text()), 0..4)),
    )
        .prop_map(
            |(
                (escalation_id, kind, customer, market, sla, instance),
                (tier, repeat, team, severity, deadline, due),
                (fired_at, late_attach, handoff, states),
            )| EscalationEntry {
                escalation_id: escalation_id.into(),
                kind,
                customer: customer.into(),
                market: market.into(),
                sla: sla.into(),
                instance,
                tier,
                repeat,
                team: team.into(),
                severity,
                deadline,
                due,
                fired_at,
                late_attach,
                handoff: handoff.into(),
                states: states
                    .into_iter()
                    .map(|(r, s)| (r.into(), s.into()))
                    .collect(),
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

    #[test]
    fn facts_round_trip(f in fact()) {
        prop_assert_eq!(decode_fact(&encode_fact(&f)).expect("decodes"), f);
    }

    #[test]
    fn escalation_entries_round_trip(e in entry()) {
        prop_assert_eq!(decode_escalation(&encode_escalation(&e)).expect("decodes"), e);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode_customer(&bytes);
        let _ = decode_fact(&bytes);
        let _ = decode_escalation(&bytes);
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
        Fact::Escalated(_) => "escalated",
        Fact::Breached { .. } => "breached",
        Fact::SlaEnded { .. } => "sla_ended",
        Fact::AuthorizationDenied { .. } => "authorization_denied",
        Fact::Acknowledged { .. } => "acknowledged",
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
    ];
    let mut kinds: Vec<&str> = facts.iter().map(fact_kind).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), 12, "every Fact variant is covered: {kinds:?}");
    for f in facts {
        assert_eq!(decode_fact(&encode_fact(&f)).expect("decodes"), f);
    }
}

/// A state with every field set to something other than its default.
fn full_state() -> CustomerState {
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
                        breached: true,
                        tiers: vec![
                            TierSlot {
                                next: None,
                                repeat: 0,
                            },
                            TierSlot {
                                next: Some(Timestamp(30)),
                                repeat: 4,
                            },
                        ],
                        breach_mark: Some(Timestamp(20)),
                        fired: vec![FiredEscalation {
                            escalation: esc(EscalationKind::Breached),
                            acknowledged: true,
                        }],
                    }),
                    last_end: Some((1, SlaEnd::Late, Timestamp(9))),
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
                end: SlaEnd::Late,
            },
            TimelineEntry::Acknowledged {
                at: Timestamp(11),
                sla: SlaId(0),
                instance: 2,
                tier: 1,
                repeat: 0,
                team: TeamId(4),
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

// ------------------------------------------------------------ bad records

fn reason(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { what, reason } => format!("{what}: {reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
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

// ------------------------------------------------------ escalation entries

fn tiny_model() -> Model {
    let state = |name: &str| State {
        name: name.into(),
        owner: model::TeamId(0),
        requires: vec![],
        allow: vec![],
        messages: vec![],
        suppress: vec![],
    };
    Model::new(ModelSpec {
        name: "tiny".into(),
        version: 1,
        teams: vec!["provisioning".into(), "support".into()],
        regions: vec![Region {
            name: "lifecycle".into(),
            initial: StateId(0),
            default_owner: None,
            states: vec![state("trial"), state("paid")],
            transitions: vec![],
        }],
        slas: vec![Sla {
            name: "access_after_payment".into(),
            owner: model::TeamId(0),
            handoff: "billing->provisioning".into(),
            start: SlaStart::Events(vec![]),
            unless: vec![],
            stop: vec![],
            cancel: vec![],
            within: Duration::from_secs(3600),
            within_bounds: None,
            tiers: vec![Tier {
                at: TierAt::Percent(model::parse_percent("100%").expect("valid")),
                notify: model::TeamId(1),
                severity: Severity::High,
            }],
        }],
        ..ModelSpec::default()
    })
}

#[test]
fn escalation_entries_carry_names_and_states() {
    let model = tiny_model();
    let mut s = CustomerState::empty(&model, "c1");
    s.market_code = "DE".into();
    s.core.regions[0].state = StateId(1);
    let mut e = esc(EscalationKind::Breached);
    e.sla = SlaId(0);
    e.team = TeamId(1);
    e.tier = 0;
    let entry = crate::state::escalation_entry(&model, &s, &e);
    assert_eq!(entry.escalation_id, "c1:access_after_payment:3:0:2");
    assert_eq!(entry.team, "support");
    assert_eq!(entry.market, "DE");
    assert_eq!(entry.handoff, "billing->provisioning");
    assert_eq!(entry.states, vec![("lifecycle".into(), "paid".into())]);
    assert_eq!(
        decode_escalation(&encode_escalation(&entry)).expect("decodes"),
        entry
    );
}
