//! `EscalationRecord`: generated log entries round-trip, and an entry
//! carries the model's names and the customer's states.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::engine::CustomerState;
use crate::engine::EscalationEntry;
use crate::engine::model::{
    self, Duration, Model, ModelSpec, Region, Sla, SlaStart, State, StateId, Tier, TierAt,
};
use crate::store::codec::encode_escalation;

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
    fn escalation_entries_round_trip(e in entry()) {
        prop_assert_eq!(decode_escalation(&encode_escalation(&e)).expect("decodes"), e);
    }
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
            calendar: None,
            pause_in: vec![],
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
