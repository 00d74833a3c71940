//! Events, proofs and regions: creating the customer, rejecting what is
//! unknown or malformed, occurred_at bounds, blocked and stale transitions,
//! proofs, automatic transitions, and forgetting idempotency keys by age.

use super::*;

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
