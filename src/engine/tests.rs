//! Unit tests of the engine on the reference model: one test per rule of
//! docs/model.md and its settled readings (cited as "FAQ n"), asserting on
//! facts and outcomes. The replay property test lives at the end.

use std::collections::HashMap;

use super::model::{Model, SlaId, load};
use super::*;

const SAAS: &str = include_str!("../../examples/saas.toml");
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000_000;

fn t(minutes: i64) -> Timestamp {
    Timestamp(T0 + minutes * MIN)
}

fn saas() -> Model {
    load("examples/saas.toml", SAAS).expect("the reference model loads")
}

/// Customers, their facts, and the engine, driven by hand.
struct Harness {
    model: Model,
    limits: Limits,
    states: HashMap<String, CustomerState>,
    facts: HashMap<String, Vec<Fact>>,
    /// Pending timers as the decisions' `armed`/`disarmed` lists left them.
    timers: HashMap<String, std::collections::BTreeSet<Timer>>,
}

impl Harness {
    fn new(model: Model) -> Harness {
        Harness {
            model,
            limits: Limits::default(),
            states: HashMap::new(),
            facts: HashMap::new(),
            timers: HashMap::new(),
        }
    }

    fn run(&mut self, customer: &str, input: Input, now: Timestamp) -> Decision {
        let d = decide(
            &self.model,
            &self.limits,
            self.states.get(customer),
            &input,
            now,
        );
        if !d.facts.is_empty() {
            let state = self
                .states
                .entry(customer.to_owned())
                .or_insert_with(|| CustomerState::empty(&self.model, customer));
            for f in &d.facts {
                state.apply(&self.model, f);
            }
            self.facts
                .entry(customer.to_owned())
                .or_default()
                .extend(d.facts.iter().cloned());
        }
        let timers = self.timers.entry(customer.to_owned()).or_default();
        for x in &d.timers.disarmed {
            assert!(timers.remove(x), "disarmed a timer that was armed: {x:?}");
        }
        for x in &d.timers.armed {
            assert!(timers.insert(*x), "armed a timer twice: {x:?}");
        }
        d
    }

    /// An event of `source.type` with id, occurred at `occurred` minutes,
    /// received at `now` minutes; market US unless the id says otherwise.
    fn ev(&mut self, c: &str, id: &str, qualified: &str, occurred: i64, now: i64) -> Decision {
        self.ev_in(c, id, qualified, occurred, now, "US")
    }

    fn ev_in(
        &mut self,
        c: &str,
        id: &str,
        qualified: &str,
        occurred: i64,
        now: i64,
        market: &str,
    ) -> Decision {
        let (source, ty) = qualified.split_once('.').expect("source.type");
        let event = Event {
            id: id.into(),
            source: source.into(),
            event_type: ty.into(),
            customer: c.into(),
            market: market.into(),
            occurred_at: t(occurred),
            attributes: Default::default(),
        };
        self.run(c, Input::Event(event), t(now))
    }

    /// Fires every timer of `c` due by `now` minutes, in order; returns the
    /// escalations.
    fn fire_until(&mut self, c: &str, now: i64) -> Vec<Escalation> {
        let mut out = Vec::new();
        while let Some(next) = self
            .states
            .get(c)
            .and_then(|s| s.timers().min_by_key(|t| (t.due, t.sla, t.tier)))
            .filter(|next| next.due <= t(now))
        {
            let d = self.run(c, Input::Timer(next), next.due);
            assert!(!d.facts.is_empty(), "a pending timer fires: {next:?}");
            out.extend(escalations(&d));
        }
        out
    }

    fn state(&self, c: &str) -> &CustomerState {
        self.states.get(c).expect("customer exists")
    }

    fn region(&self, c: &str, region: &str) -> String {
        let views = view::states(&self.model, self.state(c));
        views
            .into_iter()
            .find(|(r, _)| r == region)
            .map(|(_, s)| s)
            .expect("region exists")
    }

    fn sla(&self, name: &str) -> SlaId {
        self.model.sla(name).expect("sla exists")
    }
}

fn escalations(d: &Decision) -> Vec<Escalation> {
    d.facts
        .iter()
        .filter_map(|f| match f {
            Fact::Escalated(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn kinds(es: &[Escalation]) -> Vec<(EscalationKind, u16, u32)> {
    es.iter().map(|e| (e.kind, e.tier, e.repeat)).collect()
}

#[test]
fn first_event_creates_the_customer_in_its_market() {
    let mut h = Harness::new(saas());
    let d = h.ev("c1", "e1", "crm.lead_created", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert!(matches!(d.facts[0], Fact::Created { .. }));
    let s = h.state("c1");
    assert_eq!(&*s.market_code, "US");
    assert_eq!(s.model_version, 1);
    assert_eq!(h.region("c1", "lifecycle"), "lead");
}

#[test]
fn a_first_event_without_a_known_market_is_rejected_and_creates_nothing() {
    let mut h = Harness::new(saas());
    let d = h.ev_in("c1", "e1", "crm.lead_created", 0, 0, "");
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert!(d.reason.as_deref().unwrap_or("").contains("no market"));
    let d = h.ev_in("c1", "e1", "crm.lead_created", 0, 0, "FR");
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert!(d.reason.as_deref().unwrap_or("").contains("FR"));
    assert!(d.facts.is_empty());
    assert!(!h.states.contains_key("c1"));
}

#[test]
fn unknown_sources_and_types_are_rejected_with_what_is_known() {
    let mut h = Harness::new(saas());
    let d = h.ev("c1", "e1", "erp.invoice", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert!(d.reason.as_deref().unwrap_or("").contains("crm, billing"));
    let d = h.ev("c1", "e1", "billing.deal_won", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert!(
        d.reason
            .as_deref()
            .unwrap_or("")
            .contains("payment_succeeded")
    );
}

#[test]
fn malformed_data_is_rejected_before_the_customer() {
    let mut h = Harness::new(saas());
    let d = h.ev("c1", "", "crm.lead_created", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    let d = h.ev("c1", "e\u{7}1", "crm.lead_created", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    let long = "x".repeat(257);
    let d = h.ev("c1", &long, "crm.lead_created", 0, 0);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    let ok = "x".repeat(256);
    assert_eq!(
        h.ev("c1", &ok, "crm.lead_created", 0, 0).outcome,
        Some(Outcome::Applied)
    );
    // FAQ 17: exactly five minutes ahead is accepted, a microsecond more is not.
    assert_eq!(
        h.ev("c1", "f1", "crm.lead_created", 5, 0).outcome,
        Some(Outcome::Ignored)
    );
    let mut late = Event {
        id: "f2".into(),
        source: "crm".into(),
        event_type: "lead_created".into(),
        customer: "c1".into(),
        market: String::new(),
        occurred_at: Timestamp(t(5).0 + 1),
        attributes: Default::default(),
    };
    let d = h.run("c1", Input::Event(late.clone()), t(0));
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    late.occurred_at = t(5);
    assert_eq!(
        h.run("c1", Input::Event(late), t(0)).outcome,
        Some(Outcome::Ignored)
    );
}

/// A well-formed event that happened at `at`.
fn event_at(at: Timestamp) -> Event {
    Event {
        id: "e1".into(),
        source: "crm".into(),
        event_type: "lead_created".into(),
        customer: "c1".into(),
        market: "US".into(),
        occurred_at: at,
        attributes: Default::default(),
    }
}

#[test]
fn occurred_at_must_be_a_valid_timestamp_within_max_past() {
    let limits = Limits::default();
    let now = t(0);
    let check = |at: Timestamp| check_malformed(&limits, &event_at(at), now);
    // Exactly max_past (365d) before now is accepted, a microsecond more is not.
    let year = limits.max_past;
    assert_eq!(year, model::Duration::from_secs(365 * 86_400));
    assert_eq!(check(now - year), Ok(()));
    let e = check(Timestamp((now - year).0 - 1)).expect_err("too old");
    assert_eq!(e.kind, MalformedKind::OccurredAtPast);
    assert!(
        e.message
            .contains("more than 365d before the node's clock (max_past)"),
        "{e}"
    );
    // 1970 (a zero timestamp) is refused by the same bound.
    let e = check(Timestamp(0)).expect_err("1970");
    assert!(
        e.message
            .starts_with("occurred_at 1970-01-01T00:00:00Z is more than 365d"),
        "{e}"
    );
    // Outside the range a protobuf Timestamp may hold: refused as such,
    // whatever max_past says.
    let open = Limits {
        max_past: model::Duration(i64::MAX),
        ..limits
    };
    for at in [
        Timestamp(Timestamp::MIN_VALID.0 - 1),
        Timestamp(i64::MIN),
        Timestamp(Timestamp::MAX_VALID.0 + 1),
        Timestamp(i64::MAX),
    ] {
        let e = check_malformed(&open, &event_at(at), Timestamp(i64::MAX)).expect_err("range");
        assert_eq!(e.kind, MalformedKind::OccurredAtOutOfRange, "{at:?}");
        assert!(
            e.message.contains(
                "outside the valid Timestamp range 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"
            ),
            "{e}"
        );
    }
    assert_eq!(
        check_malformed(&open, &event_at(Timestamp::MIN_VALID), now),
        Ok(())
    );
    // The future bound names its key too.
    let e = check(t(6)).expect_err("ahead");
    assert_eq!(e.kind, MalformedKind::OccurredAtFuture);
    assert!(e.message.contains("(max_future)"), "{e}");
    // And decide rejects what check_malformed refuses, creating nothing.
    let mut h = Harness::new(saas());
    let d = h.run("c1", Input::Event(event_at(Timestamp(0))), now);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert!(d.facts.is_empty() && d.timers.armed.is_empty());
}

#[test]
fn instants_at_the_ends_of_the_valid_range_do_not_overflow() {
    // Paid at 0001-01-01, delivered at 9999-12-31 (max_past opened up):
    // the late attach skips to the breach and the re-escalation every 2h
    // lands after now, without overflowing.
    let mut h = Harness::new(saas());
    h.limits.max_past = model::Duration(i64::MAX);
    let first = Timestamp::MIN_VALID;
    let last = Timestamp::MAX_VALID;
    let mut e = event_at(first);
    h.run("c1", Input::Event(e.clone()), last);
    e.id = "d1".into();
    e.event_type = "deal_won".into();
    h.run("c1", Input::Event(e.clone()), last);
    e.id = "p1".into();
    e.source = "billing".into();
    e.event_type = "payment_succeeded".into();
    let d = h.run("c1", Input::Event(e), last);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    let es = escalations(&d);
    assert!(es.iter().any(|x| x.late_attach), "{es:?}");
    let sla = h.sla("access_after_payment");
    let next = d
        .timers
        .armed
        .iter()
        .find(|x| x.sla == sla)
        .expect("the re-escalation is armed");
    assert!(next.due >= last, "{next:?}");
    // Happened and received at the very end: the 14d onboarding deadline
    // lies past year 9999 and saturates; nothing panics.
    let mut h = Harness::new(saas());
    let mut e = event_at(last);
    e.customer = "c2".into();
    h.run("c2", Input::Event(e.clone()), last);
    e.id = "d1".into();
    e.event_type = "deal_won".into();
    let d = h.run("c2", Input::Event(e), last);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert!(d.timers.armed.iter().all(|x| x.due > last));
    let timers: Vec<Timer> = d.timers.armed.clone();
    for timer in timers {
        h.run("c2", Input::Timer(timer), Timestamp(i64::MAX));
    }
}

#[test]
fn a_market_change_is_rejected_before_deduplication() {
    let mut h = Harness::new(saas());
    h.ev("c1", "e1", "crm.lead_created", 0, 0);
    // FAQ 28: a redelivery with another market is rejected, not duplicate.
    let d = h.ev_in("c1", "e1", "crm.lead_created", 0, 1, "DE");
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    let d = h.ev_in("c1", "e1", "crm.lead_created", 0, 1, "");
    assert_eq!(d.outcome, Some(Outcome::Duplicate));
    assert!(d.facts.is_empty());
    // Same (source, id) with another type is still a duplicate.
    let d = h.ev("c1", "e1", "crm.deal_won", 1, 1);
    assert_eq!(d.outcome, Some(Outcome::Duplicate));
    // Same id from another source is a different event.
    let d = h.ev("c1", "e1", "billing.payment_failed", 1, 1);
    assert_eq!(d.outcome, Some(Outcome::Applied));
}

#[test]
fn a_blocked_transition_is_rejected_but_its_proof_is_kept() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    // Access before payment: lifecycle has no transition on it from lead;
    // the proof is kept.
    let d = h.ev("c1", "a1", "access.access_granted", 1, 1);
    assert_eq!(
        d.outcome,
        Some(Outcome::Applied),
        "the access proof changed"
    );
    h.ev("c1", "d1", "crm.deal_won", 2, 2);
    assert_eq!(h.region("c1", "lifecycle"), "onboarding");
    // A refund revokes nothing that holds, and nothing moves: ignored.
    // Payment arrives: paid, then at once active (access already holds).
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 3, 3);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert_eq!(h.region("c1", "lifecycle"), "active");
    // FAQ 14: paid was passed through: its SLA started and stopped at once.
    assert!(escalations(&d).is_empty());
    assert!(d.facts.iter().any(|f| matches!(
        f,
        Fact::SlaEnded {
            end: SlaEnd::Met,
            ..
        }
    )));
    assert!(d.timers.armed.is_empty());

    let mut h = Harness::new(saas());
    h.ev("c2", "l1", "crm.lead_created", 0, 0);
    // Payment from lead: lifecycle has no transition; billing renews.
    let d = h.ev("c2", "p1", "billing.payment_succeeded", 1, 1);
    assert_eq!(
        d.outcome,
        Some(Outcome::Applied),
        "the payment proof changed"
    );
    assert_eq!(h.region("c2", "lifecycle"), "lead");
}

#[test]
fn a_blocked_region_is_named_and_makes_the_outcome_rejected() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "d1", "crm.deal_won", 1, 1);
    h.ev("c1", "a1", "access.access_granted", 2, 2);
    // Revoke access (nothing holds... it does hold): applied.
    h.ev("c1", "r1", "access.access_revoked", 3, 3);
    // Deal won again, from onboarding: no transition (only lead and churned).
    let d = h.ev("c1", "d2", "crm.deal_won", 4, 4);
    assert_eq!(d.outcome, Some(Outcome::Applied), "contract proof renewed");

    // A model where a transition needs a proof the event does not carry.
    let text = SAAS.replace(
        "[regions.support.states.open]\nowner = \"support\"",
        "[regions.support.states.open]\nowner = \"support\"\nrequires = [\"contract\"]",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    let d = h.ev("c1", "t1", "support.ticket_opened", 1, 1);
    // The first_reply SLA started, so the outcome is applied, and the
    // reason still names the blocked region.
    assert_eq!(d.outcome, Some(Outcome::Applied));
    let reason = d.reason.expect("a blocked region is named");
    assert!(
        reason.contains("support") && reason.contains("contract"),
        "{reason}"
    );
    // Without an SLA reacting, the same block is `rejected`.
    let text = text.replace(
        "start = [\"support.ticket_opened\"]",
        "start = [\"support.agent_replied\"]",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    let d = h.ev("c1", "t1", "support.ticket_opened", 1, 1);
    assert_eq!(d.outcome, Some(Outcome::Rejected));
    assert_eq!(h.region("c1", "support"), "idle");
    // Kept in the timeline with its outcome.
    let last = h.state("c1").timeline.back().expect("timeline");
    assert!(matches!(
        last,
        TimelineEntry::Event {
            outcome: Outcome::Rejected,
            ..
        }
    ));
}

#[test]
fn proofs_follow_the_latest_occurrence() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "r1", "billing.payment_refunded", 10, 10);
    // An older payment arriving later does not re-establish (FAQ 1).
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 5, 11);
    assert!(!h.state("c1").core.proofs[1].holds());
    assert!(
        !d.facts
            .iter()
            .any(|f| matches!(f, Fact::ProofEstablished { .. }))
    );
    // A newer one does.
    h.ev("c1", "p2", "billing.payment_succeeded", 12, 12);
    assert!(h.state("c1").core.proofs[1].holds());
    // A second establishing event replaces the remembered one: applied.
    let d = h.ev("c1", "p3", "billing.payment_succeeded", 13, 13);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    let by = h.state("c1").core.proofs[1].by.clone().expect("holds");
    assert_eq!(&*by.id, "p3");
    // On equal occurred_at the later arrival wins.
    h.ev("c1", "r2", "billing.payment_refunded", 13, 14);
    assert!(!h.state("c1").core.proofs[1].holds());
}

#[test]
fn staleness_is_per_region_and_only_where_a_transition_was_stopped() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "f1", "billing.payment_failed", 10, 10);
    assert_eq!(h.region("c1", "billing"), "past_due");
    // A payment that occurred before billing entered past_due: stale for
    // billing (FAQ 3); it still establishes the payment proof, so the
    // outcome is applied.
    let d = h.ev("c1", "p1", "billing.payment_succeeded", 5, 11);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert_eq!(h.region("c1", "billing"), "past_due");
    // An old dispute_closed: billing has no transition from past_due on
    // it, so staleness stopped nothing: ignored.
    let d = h.ev("c1", "x1", "billing.dispute_closed", 1, 12);
    assert_eq!(d.outcome, Some(Outcome::Ignored));
    // An old ticket_solved: support never moved: not stale (FAQ 4), and
    // there is no transition from idle: ignored.
    let d = h.ev("c1", "s1", "support.ticket_solved", 1, 12);
    assert_eq!(d.outcome, Some(Outcome::Ignored));
    // An old payment_failed again, now stale for billing? billing is in
    // past_due with no transition on payment_failed: ignored.
    let d = h.ev("c1", "f0", "billing.payment_failed", 2, 13);
    assert_eq!(d.outcome, Some(Outcome::Ignored));
    // A stale dispute_opened ("*" -> disputed matches past_due): stale, and
    // first_reply does not react; dispute_evidence starts though. Use a
    // model without that SLA to see `stale`.
    let text = SAAS.replace(
        "start = [\"billing.dispute_opened\"]",
        "start = [\"support.ticket_opened\"]",
    );
    let mut h = Harness::new(load("m.toml", &text).expect("loads"));
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "f1", "billing.payment_failed", 10, 10);
    let d = h.ev("c1", "o1", "billing.dispute_opened", 5, 11);
    assert_eq!(d.outcome, Some(Outcome::Stale));
    assert!(d.reason.as_deref().unwrap_or("").contains("billing: stale"));
    assert_eq!(h.region("c1", "billing"), "past_due");
}

#[test]
fn a_self_transition_renews_the_moment_without_being_a_change() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    assert!(
        h.facts["c1"]
            .iter()
            .any(|f| matches!(f, Fact::RegionRenewed { .. }))
    );
    // FAQ 2: a payment_failed that occurred at t5 is now stale for billing.
    let d = h.ev("c1", "f1", "billing.payment_failed", 5, 11);
    assert_eq!(d.outcome, Some(Outcome::Stale));
    assert_eq!(h.region("c1", "billing"), "good_standing");
}

#[test]
fn automatic_transitions_chain_and_keep_the_moment_from_going_back() {
    let mut h = Harness::new(saas());
    h.ev("c1", "l1", "crm.lead_created", 0, 0);
    h.ev("c1", "d1", "crm.deal_won", 1, 1);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    assert_eq!(h.region("c1", "lifecycle"), "paid");
    // Access that occurred before the payment still activates, with the
    // region's moment max(event, previous) = 10.
    let d = h.ev("c1", "a1", "access.access_granted", 5, 12);
    assert_eq!(d.outcome, Some(Outcome::Applied));
    assert_eq!(h.region("c1", "lifecycle"), "active");
    assert_eq!(h.state("c1").core.regions[0].since, Some(t(10)));
    // A health drop moves active -> at_risk automatically.
    h.ev("c1", "h1", "product.health_dropped", 20, 20);
    assert_eq!(h.region("c1", "lifecycle"), "at_risk");
    h.ev("c1", "h2", "product.health_recovered", 21, 21);
    assert_eq!(h.region("c1", "lifecycle"), "active");
}

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
            end: SlaEnd::Late,
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
            end: SlaEnd::Late,
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
fn authorize_reads_the_current_states_and_records_denials() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 1, 1);
    h.ev("c1", "a1", "access.access_granted", 2, 2);
    let ask = |h: &mut Harness, team: &str, action: &str| {
        h.run(
            "c1",
            Input::Authorize {
                team: team.into(),
                action: action.into(),
            },
            t(3),
        )
    };
    assert_eq!(ask(&mut h, "success", "qbr").allowed, Some(true));
    // Re-onboarding denied to an active customer, naming states and owners.
    let d = ask(&mut h, "concierge", "send_onboarding");
    assert_eq!(d.allowed, Some(false));
    let reason = d.reason.expect("a reason");
    assert!(
        reason.contains("lifecycle is active (owner success)"),
        "{reason}"
    );
    assert!(
        reason.contains("billing is good_standing (owner billing)"),
        "{reason}"
    );
    assert!(matches!(
        h.state("c1").timeline.back(),
        Some(TimelineEntry::Denied { .. })
    ));
    let d = ask(&mut h, "janitors", "mop");
    assert!(d.reason.expect("a reason").contains("janitors"));
    assert!(matches!(
        h.state("c1").timeline.back(),
        Some(TimelineEntry::Denied { .. })
    ));
}

#[test]
fn check_message_allows_the_union_and_vetoes_suppressed_classes() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 1, 1);
    h.ev("c1", "a1", "access.access_granted", 2, 2);
    let s = h.state("c1").clone();
    assert!(view::check_message(&h.model, &s, "renewal").0);
    h.ev("c1", "x1", "billing.dispute_opened", 3, 3);
    let s = h.state("c1").clone();
    let (ok, reason) = view::check_message(&h.model, &s, "renewal");
    assert!(!ok);
    assert!(reason.expect("reason").contains("billing is disputed"));
    let (ok, reason) = view::check_message(&h.model, &s, "winback");
    assert!(!ok);
    assert!(
        reason
            .expect("reason")
            .contains("no current state allows winback")
    );
    let (ok, reason) = view::check_message(&h.model, &s, "carrier_pigeon");
    assert!(!ok);
    assert!(reason.expect("reason").contains("carrier_pigeon"));
}

#[test]
fn only_the_notified_team_or_the_owner_may_acknowledge() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    let fired = h.fire_until("c1", 190);
    let re = fired.iter().find(|e| e.tier == 2).expect("re-escalation");
    let id = re.id("c1", "access_after_payment");
    let ack = |h: &mut Harness, team: &str| {
        h.run(
            "c1",
            Input::Acknowledge {
                escalation_id: id.clone(),
                team: team.into(),
                note: String::new(),
            },
            t(200),
        )
    };
    let d = ack(&mut h, "marketing");
    assert_eq!(d.allowed, Some(false));
    assert!(
        d.reason
            .expect("reason")
            .contains("cx_director (notified) or provisioning")
    );
    // Without a team, the answer names the flag and the teams that may.
    let d = ack(&mut h, "");
    assert_eq!(d.allowed, Some(false));
    assert!(d.facts.is_empty());
    let reason = d.reason.expect("reason");
    assert!(
        reason.starts_with("--team is required")
            && reason.contains(
                "pass --team cx_director (the notified team) or --team provisioning (the SLA's owner)"
            ),
        "{reason}"
    );
    assert_eq!(
        ack(&mut h, "provisioning").allowed,
        Some(true),
        "the owner may"
    );
    assert_eq!(ack(&mut h, "cx_director").allowed, Some(true));
    // Acknowledging does not stop later tiers.
    let later = h.fire_until("c1", 310);
    assert_eq!(later.len(), 1);
    // Resolved escalations may still be acknowledged.
    h.ev("c1", "a1", "access.access_granted", 320, 320);
    assert_eq!(ack(&mut h, "cx_director").allowed, Some(true));
    let d = h.run(
        "c1",
        Input::Acknowledge {
            escalation_id: "c1:access_after_payment:9:0:0".into(),
            team: "provisioning".into(),
            note: String::new(),
        },
        t(321),
    );
    assert_eq!(d.allowed, Some(false));
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

#[test]
fn the_view_shows_owners_proofs_slas_and_the_timeline() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    h.fire_until("c1", 70);
    let v = view::customer_view(&h.model, h.state("c1"), 0);
    assert_eq!(v.owner.as_deref(), Some("provisioning"));
    assert_eq!(v.regions[0].state, "paid");
    assert_eq!(v.regions[0].since, Some(t(10)));
    let payment = v
        .proofs
        .iter()
        .find(|p| p.proof == "payment")
        .expect("payment proof");
    assert_eq!(
        payment.established_by.as_ref().map(|e| e.id.as_str()),
        Some("p1")
    );
    let sla = v
        .slas
        .iter()
        .find(|s| s.sla == "access_after_payment")
        .expect("open");
    assert!(sla.breached);
    assert_eq!(sla.next_tier.as_ref().map(|n| n.at), Some(t(190)));
    assert_eq!(v.escalations.len(), 2);
    assert_eq!(v.timeline[0].kind.as_str(), "escalation", "newest first");
    let v = view::customer_view(&h.model, h.state("c1"), 1);
    assert_eq!(v.timeline.len(), 1);
}

mod replay {
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
}

#[test]
fn idempotency_keys_can_be_forgotten_by_age() {
    let mut seen = SeenKeys::default();
    let (a, b): (std::sync::Arc<str>, std::sync::Arc<str>) = ("a".into(), "b".into());
    seen.insert(model::SourceId(0), &a, t(0));
    seen.insert(model::SourceId(1), &a, t(10));
    seen.insert(model::SourceId(0), &b, t(20));
    // A key already known keeps its first arrival.
    seen.insert(model::SourceId(0), &b, t(30));
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.forget_before(t(10)), 1);
    assert!(!seen.contains(model::SourceId(0), "a"));
    assert!(seen.contains(model::SourceId(1), "a"));
    assert_eq!(seen.forget_before(t(21)), 2);
    assert!(seen.is_empty());
}
