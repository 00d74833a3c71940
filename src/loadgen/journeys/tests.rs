//! Journeys are long enough, deterministic for a seed, carry the failure
//! share asked for, and plant each failure as planned, for the example
//! model and one of another shape.

use super::planner::Planner;
use super::*;
use crate::engine::Timestamp;
use crate::engine::model::{Duration, EventTypeId, MarketId, Model, SlaId, load};

const SAAS: &str = include_str!("../../../examples/saas.toml");

/// A small model of another shape: no markets, two regions, an SLA
/// started by an event and one held by a state.
pub const TICKETS: &str = r#"
teams = ["desk", "lead"]
message_classes = ["notice"]

[model]
name = "tickets"
version = 1

[sources]
desk = ["opened", "assigned", "answered", "closed", "reopened"]

[proofs.assignee]
from = ["desk.assigned"]

[regions.ticket]
initial = "new"
default_owner = "desk"

[regions.ticket.states.new]
[regions.ticket.states.assigned]
requires = ["assignee"]
[regions.ticket.states.waiting]
[regions.ticket.states.closed]

[[regions.ticket.transitions]]
from = "new"
on = "desk.opened"
to = "assigned"

[[regions.ticket.transitions]]
from = "assigned"
on = "desk.answered"
to = "waiting"

[[regions.ticket.transitions]]
from = ["assigned", "waiting"]
on = "desk.closed"
to = "closed"

[[regions.ticket.transitions]]
from = "closed"
on = "desk.reopened"
to = "new"

[slas.answer]
owner = "desk"
start = ["desk.opened", "desk.reopened"]
stop = ["desk.answered", "desk.closed"]
within = "1h"

[[slas.answer.tiers]]
at = "100%"
notify = "lead"
severity = "high"

[slas.assigned_too_long]
owner = "desk"
in_state = "ticket.assigned"
within = "2h"

[[slas.assigned_too_long.tiers]]
at = "50%"
severity = "low"

[[slas.assigned_too_long.tiers]]
at = "100%"
notify = "lead"
severity = "high"
"#;

/// Real-time models: every SLA may be the one that fails.
fn options(model: &Model, share: f64) -> JourneyOptions {
    JourneyOptions {
        failure_share: share,
        max_sla: Duration::from_secs(365 * 86_400),
        ..JourneyOptions::for_model(model, 7)
    }
}

fn check_journeys(model: &Model, n: u64) {
    let generator = Generator::new(model, options(model, 0.3));
    for i in 0..n {
        let j = generator.journey(i);
        let distinct: std::collections::BTreeSet<u16> = j.steps.iter().map(|s| s.id).collect();
        assert!(
            distinct.len() >= 3,
            "customer {i} has only {} distinct events: {j:?}",
            distinct.len()
        );
    }
}

#[test]
fn saas_journeys_have_at_least_three_events() {
    let model = load("saas", SAAS).expect("loads");
    check_journeys(&model, 500);
}

#[test]
fn journeys_from_another_model_have_at_least_three_events() {
    let model = load("tickets", TICKETS).expect("loads");
    check_journeys(&model, 500);
}

#[test]
fn journeys_are_deterministic_for_a_seed() {
    let model = load("saas", SAAS).expect("loads");
    let a = Generator::new(&model, options(&model, 0.5));
    let b = Generator::new(&model, options(&model, 0.5));
    for i in 0..50 {
        assert_eq!(a.journey(i), b.journey(i));
    }
    let other = Generator::new(
        &model,
        JourneyOptions {
            seed: 8,
            ..options(&model, 0.5)
        },
    );
    assert!((0..50).any(|i| a.journey(i) != other.journey(i)));
}

fn share_of(model: &Model, share: f64, n: u64) -> (f64, Vec<(FailureKind, usize)>) {
    let generator = Generator::new(model, options(model, share));
    let mut counts = std::collections::BTreeMap::new();
    let mut failed = 0;
    for i in 0..n {
        if let Some(k) = generator.journey(i).failure {
            failed += 1;
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    (failed as f64 / n as f64, counts.into_iter().collect())
}

#[test]
fn the_failure_share_is_honoured() {
    for text in [SAAS, TICKETS] {
        let model = load("m", text).expect("loads");
        for share in [0.0, 0.05, 0.3, 1.0] {
            let (got, kinds) = share_of(&model, share, 2000);
            assert!(
                (got - share).abs() <= 0.03,
                "share {share}: got {got} ({kinds:?})"
            );
            if share >= 0.3 {
                // Every kind is planned, in roughly equal parts.
                assert_eq!(kinds.len(), 4, "{kinds:?}");
            }
        }
    }
}

#[test]
fn a_never_stopped_failure_leaves_its_sla_running_and_others_closed() {
    let model = load("saas", SAAS).expect("loads");
    let generator = Generator::new(
        &model,
        JourneyOptions {
            failure_kinds: vec![FailureKind::NeverStopped],
            ..options(&model, 1.0)
        },
    );
    let healthy = Generator::new(&model, options(&model, 0.0));
    for i in 0..200 {
        let j = generator.journey(i);
        let running = replay(&model, &j);
        match j.failure {
            Some(FailureKind::NeverStopped) => assert_eq!(running.len(), 1, "{j:?}"),
            other => assert_eq!(other, Some(FailureKind::Duplicate)),
        }
        let h = healthy.journey(i);
        assert!(replay(&model, &h).is_empty(), "healthy journey {h:?}");
    }
}

/// The SLAs still running after a journey sent a gap apart.
fn replay(model: &Model, j: &Journey) -> Vec<SlaId> {
    let options = JourneyOptions::for_model(model, 0);
    let mut plan = Planner::new(model, j.market, options.gap, options.epoch);
    for s in &j.steps {
        plan.push(*s);
    }
    plan.running()
}

#[test]
fn a_late_stop_is_sent_after_the_deadline() {
    let model = load("saas", SAAS).expect("loads");
    let generator = Generator::new(
        &model,
        JourneyOptions {
            failure_kinds: vec![FailureKind::StoppedLate],
            ..options(&model, 1.0)
        },
    );
    let mut late = 0;
    for i in 0..100 {
        let j = generator.journey(i);
        if j.failure == Some(FailureKind::StoppedLate) {
            late += 1;
            let last = j.steps.last().expect("steps");
            assert!(matches!(last.when, When::AfterOccurred { .. }), "{j:?}");
            assert!(replay(&model, &j).is_empty(), "closed late: {j:?}");
        }
    }
    assert!(late > 50, "{late} of 100 journeys could stop late");
}

#[test]
fn sla_failures_only_hit_slas_short_enough_to_breach_in_the_run() {
    let model = load("saas", SAAS).expect("loads");
    // Nothing in saas runs under an hour: SLA failures become duplicates.
    let none_short = Generator::new(
        &model,
        JourneyOptions {
            failure_kinds: vec![FailureKind::NeverStopped, FailureKind::StoppedLate],
            max_sla: Duration::from_secs(60),
            ..options(&model, 1.0)
        },
    );
    for i in 0..100 {
        assert_eq!(none_short.journey(i).failure, Some(FailureKind::Duplicate));
    }
}

#[test]
fn occurred_at_follows_the_steps() {
    let model = load("saas", SAAS).expect("loads");
    let e = EventTypeId(0);
    let j = Journey {
        index: 0,
        market: MarketId(0),
        steps: vec![
            Step {
                event: e,
                id: 0,
                when: When::Gap,
                occurred: Occurred::AtSend,
            },
            Step {
                event: e,
                id: 1,
                when: When::Gap,
                occurred: Occurred::Before {
                    step: 0,
                    by: Duration(5),
                },
            },
            Step {
                event: e,
                id: 0,
                when: When::Gap,
                occurred: Occurred::SameAs(0),
            },
        ],
        failure: None,
    };
    let at = j.occurred_at(&[Timestamp(100), Timestamp(200), Timestamp(300)]);
    assert_eq!(at, vec![Timestamp(100), Timestamp(95), Timestamp(100)]);
    let ev = j.event(&model, "c1", 2, at[2]);
    assert_eq!(ev.id, "e0");
    assert_eq!(ev.market, "US");
}

const OFFICE_HOURS: &str = include_str!("../../../tests/models/office_hours.toml");

/// The office-hours model with its Berlin market only (its BR market runs
/// on São Paulo hours, which these instants are not about).
fn berlin_office() -> Model {
    let text = OFFICE_HOURS.replace(
        "[markets.BR]\nslas = { first_reply = { calendar = \"br_office\" } }\n",
        "",
    );
    assert_ne!(text, OFFICE_HOURS, "the BR market was taken out");
    load("office_hours", &text).expect("loads")
}

/// 2026-03-06T15:00:00Z: a Friday, 16:00 in Berlin.
const FRIDAY_4PM_BERLIN: Timestamp = Timestamp(1_772_809_200_000_000);
/// 2026-03-10T09:00:00Z: a Tuesday, 10:00 in Berlin.
const TUESDAY_10AM_BERLIN: Timestamp = Timestamp(1_773_133_200_000_000);
/// 2026-03-07T21:00:00Z: a Saturday, 22:00 in Berlin.
const SATURDAY_NIGHT_BERLIN: Timestamp = Timestamp(1_772_917_200_000_000);

/// Every fact of a journey sent as planned (each step a gap after the
/// previous, or at its planned offset), with every timer due by a year
/// later fired; and when each step was sent.
fn facts_of(
    model: &Model,
    j: &Journey,
    o: &JourneyOptions,
) -> (Vec<crate::engine::Fact>, Vec<Timestamp>) {
    use crate::engine::{Input, Limits};
    use crate::virtual_time::VirtualTime;
    let mut vt = VirtualTime::new(model, Limits::default());
    let mut sent: Vec<Timestamp> = Vec::new();
    let mut facts = Vec::new();
    for (i, step) in j.steps.iter().enumerate() {
        let at = match (step.when, sent.last()) {
            (_, None) => o.epoch,
            (When::Gap, Some(prev)) => *prev + o.gap,
            (When::AfterOccurred { step, offset }, Some(prev)) => {
                (*prev).max(j.occurred_at(&sent)[step as usize] + offset)
            }
        };
        sent.push(at);
        while let Some(f) = vt.fire_next(at) {
            facts.extend(f.decision.facts);
        }
        let occurred = j.occurred_at(&sent);
        let e = j.event(model, "c", i, occurred[i]);
        facts.extend(vt.run("c", &Input::Event(e), at).facts);
    }
    let end = sent.last().copied().unwrap_or(o.epoch) + Duration::from_secs(365 * 86_400);
    while let Some(f) = vt.fire_next(end) {
        facts.extend(f.decision.facts);
    }
    (facts, sent)
}

fn escalated(facts: &[crate::engine::Fact]) -> usize {
    facts
        .iter()
        .filter(|f| matches!(f, crate::engine::Fact::Escalated(_)))
        .count()
}

#[test]
fn a_share_of_customers_waits_on_itself_and_replies_later() {
    use crate::engine::Fact;
    let model = load("saas", SAAS).expect("loads");
    let first_reply = model.sla("first_reply").expect("declared");
    let support = model.source("support").expect("support");
    let waits = model
        .event(support, "waiting_on_customer")
        .expect("declared");
    let replies = model.event(support, "customer_replied").expect("declared");
    for epoch in [TUESDAY_10AM_BERLIN, SATURDAY_NIGHT_BERLIN] {
        let o = JourneyOptions {
            pause_share: 1.0,
            failure_share: 0.0,
            epoch,
            ..options(&model, 0.0)
        };
        let generator = Generator::new(&model, o.clone());
        let mut planned = 0;
        for i in 0..300 {
            let j = generator.journey(i);
            let (facts, _) = facts_of(&model, &j, &o);
            // Healthy, paused or not: nothing escalates, nothing stays open.
            assert_eq!(escalated(&facts), 0, "{j:?}");
            assert!(replay_from(&model, &j, &o).is_empty(), "{j:?}");
            // The planned wait: the reply timed from the wait, half to one
            // and a half targets later, pausing and resuming first_reply.
            let Some(k) = j.steps.windows(2).position(|w| {
                w[0].event == waits
                    && w[1].event == replies
                    && matches!(w[1].when, When::AfterOccurred { .. })
            }) else {
                continue;
            };
            planned += 1;
            let When::AfterOccurred { step, offset } = j.steps[k + 1].when else {
                unreachable!("matched above")
            };
            assert_eq!(step as usize, k, "{j:?}");
            let within = model.rules(j.market).slas[first_reply.idx()].within;
            assert!(
                offset.0 * 2 >= within.0 && offset.0 * 2 <= within.0 * 3,
                "{j:?}"
            );
            let paused = facts
                .iter()
                .any(|f| matches!(f, Fact::SlaPaused { sla, .. } if *sla == first_reply));
            let resumed = facts
                .iter()
                .any(|f| matches!(f, Fact::SlaResumed { sla, .. } if *sla == first_reply));
            assert!(paused && resumed, "{j:?}");
        }
        // About a third of the walks open a ticket.
        assert!(planned >= 30, "{planned} of 300 waited at {epoch}");
    }
}

/// The SLAs still running after a journey sent as planned from the
/// options' epoch.
fn replay_from(model: &Model, j: &Journey, o: &JourneyOptions) -> Vec<SlaId> {
    let mut plan = Planner::new(model, j.market, o.gap, o.epoch);
    for s in &j.steps {
        plan.push(*s);
    }
    plan.running()
}

#[test]
fn a_late_stop_on_a_calendar_lands_half_way_to_the_re_escalation_in_office_time() {
    use crate::engine::{Fact, SlaEnd};
    // first_reply: 4 office hours (lunch 12-13), re-escalation 1 h after
    // the breach: the stop is due at 4 h 30 min of office time. Started
    // Friday 16:00 in Berlin, that is on Monday afternoon.
    let model = berlin_office();
    let o = JourneyOptions {
        failure_kinds: vec![FailureKind::StoppedLate],
        pause_share: 0.5,
        epoch: FRIDAY_4PM_BERLIN,
        ..options(&model, 1.0)
    };
    let generator = Generator::new(&model, o.clone());
    let mut late = 0;
    for i in 0..100 {
        let j = generator.journey(i);
        if j.failure != Some(FailureKind::StoppedLate) {
            continue;
        }
        late += 1;
        let (facts, sent) = facts_of(&model, &j, &o);
        let ended: Vec<_> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::SlaEnded { end, elapsed, .. } => Some((*end, *elapsed)),
                _ => None,
            })
            .collect();
        let last = ended.last().expect("the late stop ends it");
        assert_eq!(
            *last,
            (SlaEnd::Missed, Duration::from_secs(4 * 3600 + 1800)),
            "{j:?}"
        );
        let monday = Timestamp(FRIDAY_4PM_BERLIN.0 + 3 * 86_400_000_000 - 8 * 3_600_000_000);
        assert!(*sent.last().expect("sent") > monday, "{j:?}");
        // It breached (tiers 0 and 1) and nothing re-escalated.
        assert_eq!(
            escalated(&facts),
            2 + 2,
            "breach, warning and their resolutions: {j:?}"
        );
    }
    assert!(late > 20, "{late} of 100 journeys could stop late");
}

#[test]
fn after_hours_a_calendar_sla_is_no_victim() {
    let model = berlin_office();
    // 5 h: the 4 office hours and lunch, from Tuesday 10:00.
    let at = |epoch| {
        let o = JourneyOptions {
            failure_kinds: vec![FailureKind::NeverStopped],
            max_sla: Duration::from_secs(5 * 3600),
            pause_share: 0.0,
            epoch,
            ..options(&model, 1.0)
        };
        let generator = Generator::new(&model, o);
        (0..100)
            .filter(|i| generator.journey(*i).failure == Some(FailureKind::NeverStopped))
            .count()
    };
    assert!(
        at(TUESDAY_10AM_BERLIN) > 20,
        "in office hours the SLA can fail"
    );
    assert_eq!(
        at(SATURDAY_NIGHT_BERLIN),
        0,
        "at night it breaches on Monday"
    );
}
