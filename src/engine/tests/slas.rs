//! SLAs: instances starting, stopping and cancelling, tiers and breaches
//! firing once, late attachment, `unless`, market overlays, and escalation
//! ids.

use super::*;

/// The ghost customer: paid, no access; 50% at 30m, breach at 1h,
/// cx_director at 3h, 5h, ...; all resolved when access arrives.
#[test]
fn a_ghost_customer_escalates_then_resolves() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "d1", "crm.deal_won", 1, 1);
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    assert_eq!(h.region("c1", "lifecycle"), "paid");
    let sla = h.sla("access_after_payment");
    let armed: Vec<_> = d.timers.armed.iter().filter(|t| t.sla == sla).collect();
    assert_eq!(armed.len(), 1);
    assert_eq!(armed[0].due, t(40));

    let fired = h.fire_until("c1", 10 + 60 + 2 * 60 + 2 * 60);
    let access: Vec<_> = fired.iter().filter(|e| e.sla == sla).cloned().collect();
    assert_eq!(
        kinds(&access),
        vec![
            (EscalationKind::TierReached, 0, 0),
            (EscalationKind::Breached, 1, 0),
            (EscalationKind::TierReached, 2, 0),
            (EscalationKind::TierReached, 2, 1),
        ]
    );
    let dues: Vec<_> = access.iter().map(|e| e.due).collect();
    assert_eq!(dues, vec![t(40), t(70), t(190), t(310)]);
    assert_eq!(access[1].deadline, t(70));
    let names: Vec<_> = access
        .iter()
        .map(|e| h.model.team_name(e.team).to_owned())
        .collect();
    assert_eq!(
        names,
        ["provisioning", "provisioning", "cx_director", "cx_director"]
    );
    assert!(access.iter().all(|e| !e.late_attach));

    let d = h.ev("c1", "a1", "access.access_granted", 320, 320);
    assert_eq!(h.region("c1", "lifecycle"), "active");
    let resolved = escalations(&d);
    assert_eq!(resolved.len(), 4);
    assert!(
        resolved
            .iter()
            .all(|e| e.kind == EscalationKind::Resolved && e.at == t(320))
    );
    assert!(d.facts.iter().any(|f| matches!(
        f,
        Fact::SlaEnded {
            end: SlaEnd::Missed,
            ..
        }
    )));
    assert!(d.timers.disarmed.iter().any(|t| t.sla == sla));
    assert!(h.state("c1").core.running(sla).is_none());
}

#[test]
fn a_timer_never_fires_twice_and_a_stale_timer_does_nothing() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "d1", "crm.deal_won", 1, 1);
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    let sla = h.sla("access_after_payment");
    let timer = *d.timers.armed.iter().find(|t| t.sla == sla).expect("armed");
    let first = h.run("c1", Input::Timer(timer), t(40));
    assert_eq!(escalations(&first).len(), 1);
    let again = h.run("c1", Input::Timer(timer), t(41));
    assert!(again.facts.is_empty(), "a tier never fires twice");
    // A timer of an earlier instance does nothing either.
    let old = Timer {
        instance: 0,
        ..timer
    };
    assert!(h.run("c1", Input::Timer(old), t(42)).facts.is_empty());
}

#[test]
fn a_late_payment_attaches_late_with_the_breach_at_once() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "d1", "crm.deal_won", 1, 1);
    // Paid at 10, delivered at 100: 50% (40) skipped, breach (70) at once,
    // the re-escalation at 190 keeps its time.
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 10, 100);
    let es = escalations(&d);
    assert_eq!(kinds(&es), vec![(EscalationKind::Breached, 1, 0)]);
    assert!(es[0].late_attach);
    assert_eq!(es[0].at, t(100));
    let sla = h.sla("access_after_payment");
    let next = d.timers.armed.iter().find(|t| t.sla == sla).expect("armed");
    assert_eq!((next.due, next.tier, next.repeat), (t(190), 2, 0));
    // Delivered at 200: the re-escalation at 190 is past, 310 is next (k=1).
    let mut h = Harness::new(saas());
    h.ev("c2", "d1", "crm.deal_won", 1, 1);
    let d = h.ev("c2", "p1", "billing.payment_succeeded", 10, 200);
    let next = d.timers.armed.iter().find(|t| t.sla == sla).expect("armed");
    assert_eq!((next.due, next.tier, next.repeat), (t(310), 2, 1));
    // FAQ 11: a tier due exactly at the attach instant keeps its time.
    let mut h = Harness::new(saas());
    h.ev("c3", "d1", "crm.deal_won", 1, 1);
    let d = h.ev("c3", "p1", "billing.payment_succeeded", 10, 70);
    assert!(escalations(&d).is_empty());
    let next = d.timers.armed.iter().find(|t| t.sla == sla).expect("armed");
    assert_eq!((next.due, next.tier), (t(70), 1));
}

#[test]
fn a_stop_seen_before_its_start_completes_the_instance_at_once() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    let sla = h.sla("first_reply");
    h.ev("c1", "r1", "support.agent_replied", 10, 10);
    let d = h.ev("c1", "o1", "support.ticket_opened", 5, 11);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert!(
        d.facts
            .iter()
            .any(|f| matches!(f, Fact::SlaEnded { end: SlaEnd::Met, sla: s, .. } if *s == sla))
    );
    assert!(h.state("c1").core.running(sla).is_none());
    assert!(d.timers.armed.iter().all(|t| t.sla != sla));
    // A stop that occurred before the start belongs to an earlier cycle.
    h.ev("c1", "o2", "support.ticket_opened", 20, 20);
    assert!(h.state("c1").core.running(sla).is_some());
    let d = h.ev("c1", "r0", "support.agent_replied", 15, 21);
    assert!(h.state("c1").core.running(sla).is_some(), "{:?}", d.facts);
    // A stop after the deadline, delivered out of order, completes late
    // at once and escalates nothing (FAQ 15).
    let mut h = Harness::new(saas());
    h.ev("c2", "l1", "crm.lead_created", 0, 0);
    h.ev("c2", "r1", "support.agent_replied", 600, 600);
    let d = h.ev("c2", "o1", "support.ticket_opened", 5, 601);
    assert!(escalations(&d).is_empty());
    assert!(d.facts.iter().any(|f| matches!(
        f,
        Fact::SlaEnded {
            end: SlaEnd::Missed,
            ..
        }
    )));
}

#[test]
fn a_cancel_ends_the_instance_and_resolves_what_fired() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    h.fire_until("c1", 75);
    let d = h.ev("c1", "r1", "billing.payment_refunded", 80, 80);
    assert_eq!(h.region("c1", "lifecycle"), "onboarding");
    assert!(d.facts.iter().any(|f| matches!(
        f,
        Fact::SlaEnded {
            end: SlaEnd::Cancelled,
            ..
        }
    )));
    let es = escalations(&d);
    assert_eq!(es.len(), 2);
    assert!(es.iter().all(|e| e.kind == EscalationKind::Resolved));
    // Back in onboarding: onboarding_to_payment starts again (instance 2).
    let sla = h.sla("onboarding_to_payment");
    assert_eq!(h.state("c1").core.running(sla).map(|i| i.number), Some(2));
}

#[test]
fn an_in_state_sla_on_the_initial_state_starts_at_creation() {
    let text = SAAS.replace(
        "in_state = \"lifecycle.onboarding\"",
        "in_state = \"lifecycle.lead\"",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    let sla = h.sla("onboarding_to_payment");
    assert_eq!(
        h.state("c1").core.running(sla).map(|i| i.started_at),
        Some(t(0))
    );
    // Created and left at once: passed through (FAQ 14).
    h.ev("c2", "d1", "crm.deal_won", 0, 0);
    assert!(h.state("c2").core.running(sla).is_none());
    assert_eq!(h.state("c2").core.slas[sla.idx()].started, 1);
}

#[test]
fn unless_keeps_an_sla_from_starting() {
    let text = SAAS.replace(
        "start = [\"support.ticket_opened\"]",
        "start = [\"support.ticket_opened\"]\nunless = [\"at_risk\"]",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "x1", "product.health_dropped", 0, 0);
    let d = h.ev("c1", "o1", "support.ticket_opened", 1, 1);
    let sla = h.sla("first_reply");
    assert!(h.state("c1").core.running(sla).is_none());
    assert_eq!(d.outcome, Some(Outcome::Applied), "support moved to open");
}

#[test]
fn an_sla_without_a_breach_tier_breaches_silently() {
    let text = SAAS.replace(
        "[[slas.first_reply.tiers]]\nat = \"100%\"",
        "[[slas.first_reply.tiers]]\nat = \"50%\"",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "o1", "support.ticket_opened", 0, 0);
    let fired = h.fire_until("c1", 300);
    assert_eq!(kinds(&fired), vec![(EscalationKind::TierReached, 0, 0)]);
    let sla = h.sla("first_reply");
    assert!(h.state("c1").core.running(sla).expect("running").breached);
    assert!(
        h.facts["c1"]
            .iter()
            .any(|f| matches!(f, Fact::Breached { .. }))
    );
    // Late attach: recorded at once, still no escalation.
    let d = h.ev("c2", "o1", "support.ticket_opened", 0, 500);
    assert!(escalations(&d).is_empty());
    assert!(d.facts.iter().any(|f| matches!(f, Fact::Breached { .. })));
}

#[test]
fn a_market_overlay_reaches_paid_its_own_way_and_faster() {
    let mut h = Harness::new(saas());
    h.ev_in("c1", "d1", "crm.deal_won", 0, 0, "BR");
    let d = h.ev_in("c1", "b1", "billing.boleto_settled", 10, 10, "");
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert_eq!(h.region("c1", "lifecycle"), "paid");
    assert!(
        h.state("c1").core.proofs[1].holds(),
        "boleto establishes payment in BR"
    );
    let sla = h.sla("access_after_payment");
    let fired = h.fire_until("c1", 40);
    let breach = fired
        .iter()
        .find(|e| e.kind == EscalationKind::Breached)
        .expect("breach");
    assert_eq!(breach.sla, sla);
    assert_eq!(breach.deadline, t(40), "BR's within is 30m");
    // In the US the same event means nothing to lifecycle.
    h.ev_in("c2", "d1", "crm.deal_won", 0, 0, "US");
    h.ev_in("c2", "b1", "billing.boleto_settled", 10, 10, "");
    assert_eq!(h.region("c2", "lifecycle"), "onboarding");
}

#[test]
fn escalation_ids_round_trip_even_with_colons_in_customer_ids() {
    let id = escalation_id("acme:eu:42", "first_reply", 3, 1, 7);
    let r = parse_escalation_id(&id).expect("parses");
    assert_eq!(
        (r.customer, r.sla, r.instance, r.tier, r.repeat),
        ("acme:eu:42", "first_reply", 3, 1, 7)
    );
    assert!(parse_escalation_id("nonsense").is_none());
}

/// A desk whose first reply (60 minutes, wall time) stops counting while
/// the ticket waits on the customer.
const PAUSING: &str = r#"
teams = ["support"]
[model]
name = "pausing"
version = 1
[sources]
desk = ["ticket_opened", "agent_replied", "waiting_on_customer", "customer_replied"]
[regions.support]
initial = "idle"
default_owner = "support"
states = { idle = {}, open = {}, waiting = {} }
transitions = [
  { from = "*", to = "open", on = "desk.ticket_opened" },
  { from = "open", to = "waiting", on = "desk.waiting_on_customer" },
  { from = "waiting", to = "open", on = "desk.customer_replied" },
  { from = "*", to = "idle", on = "desk.agent_replied" },
]
[slas.first_reply]
owner = "support"
start = ["desk.ticket_opened"]
stop = ["desk.agent_replied"]
within = "60m"
pause_in = ["support.waiting"]
tiers = [{ at = "100%", severity = "high" }]
[markets.US]
"#;

#[test]
fn a_stop_delivered_late_while_paused_is_met_and_fires_nothing() {
    let model = load("pausing.toml", PAUSING).expect("the model loads");
    let mut h = Harness::new(model);
    h.ev("c1", "t1", "desk.ticket_opened", 0, 0);
    // Waiting from 10 (E = 10); the reply that happened at 20, during the
    // pause, arrives at 200. Its move ends the pause at 20, so E now
    // would be 190 and the breach (E = 60, at 70) strictly past, but the
    // same event stops the instance at 20 with E = 10: met, and nothing
    // escalates (FAQ 41, 45, 46).
    h.ev("c1", "w1", "desk.waiting_on_customer", 10, 10);
    let d = h.ev("c1", "a1", "desk.agent_replied", 20, 200);
    assert!(escalations(&d).is_empty(), "no late breach: {:?}", d.facts);
    let ended = d
        .facts
        .iter()
        .find_map(|f| match f {
            Fact::SlaEnded {
                end, at, elapsed, ..
            } => Some((*end, *at, *elapsed)),
            _ => None,
        })
        .expect("the instance ends");
    assert_eq!(
        ended,
        (SlaEnd::Met, t(20), crate::engine::model::Duration(10 * MIN))
    );
    // The same reply delivered on time after a late resumption still
    // breaches late: the customer replied at 20 (learnt at 200), and the
    // agent has not answered.
    let model = load("pausing.toml", PAUSING).expect("the model loads");
    let mut h = Harness::new(model);
    h.ev("c2", "t1", "desk.ticket_opened", 0, 0);
    h.ev("c2", "w1", "desk.waiting_on_customer", 10, 10);
    let d = h.ev("c2", "r1", "desk.customer_replied", 20, 200);
    let es = escalations(&d);
    assert_eq!(kinds(&es), vec![(EscalationKind::Breached, 0, 0)]);
    assert!(es[0].late_attach);
    assert_eq!(es[0].deadline, t(70));
}
