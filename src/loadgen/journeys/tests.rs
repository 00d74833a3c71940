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
