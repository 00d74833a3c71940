//! Replaying a customer's facts rebuilds exactly the state that
//! produced them, whatever the events, their order and their timing.

use proptest::prelude::*;

use super::*;

const EVENTS: &[&str] = &[
    "crm.lead_created",
    "crm.deal_won",
    "crm.deal_lost",
    "billing.payment_succeeded",
    "billing.payment_failed",
    "billing.payment_refunded",
    "billing.boleto_settled",
    "billing.dispute_opened",
    "billing.dispute_closed",
    "billing.subscription_canceled",
    "access.access_granted",
    "access.access_revoked",
    "product.health_dropped",
    "product.health_recovered",
    "support.ticket_opened",
    "support.agent_replied",
    "support.ticket_solved",
];

#[derive(Debug, Clone)]
enum Step {
    /// Event index, id number (small: duplicates happen), occurred
    /// offset in minutes from now (negative: late).
    Event(usize, u8, i64),
    Authorize(u8),
    FireTimers,
    Wait(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..EVENTS.len(), 0u8..20, -300i64..5).prop_map(|(e, id, off)| Step::Event(e, id, off)),
        1 => (0u8..4).prop_map(Step::Authorize),
        2 => Just(Step::FireTimers),
        2 => (1i64..400).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn replaying_the_facts_rebuilds_the_state(
        market in prop::sample::select(vec!["US", "DE", "BR"]),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let mut h = Harness::new(saas());
        let mut now = 0i64;
        for s in steps {
            match s {
                Step::Event(e, id, off) => {
                    h.ev_in("c", &format!("e{id}"), EVENTS[e], now + off, now, market);
                }
                Step::Authorize(k) => {
                    let (team, action) = [("success", "qbr"), ("concierge", "send_onboarding"), ("support", "view"), ("billing", "refund")][k as usize];
                    if h.states.contains_key("c") {
                        h.run("c", Input::Authorize { team: team.into(), action: action.into() }, t(now));
                    }
                }
                Step::FireTimers => { h.fire_until("c", now); }
                Step::Wait(m) => now += m,
            }
        }
        if let Some(live) = h.states.get("c") {
            let mut rebuilt = CustomerState::empty(&h.model, "c");
            for f in &h.facts["c"] {
                rebuilt.apply(&h.model, f);
            }
            prop_assert_eq!(&rebuilt, live);
            // The timers the decisions armed and disarmed are exactly
            // the state's pending timers: the durable index stays true.
            let pending: std::collections::BTreeSet<Timer> = live.timers().collect();
            prop_assert_eq!(&pending, &h.timers["c"]);
        }
    }
}
