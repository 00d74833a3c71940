//! Ingest over real gRPC against the real `handoff` binary on 127.0.0.1:0:
//! what each event's answer says (applied, duplicate, ignored, rejected,
//! stale, with reasons), malformed input, and batches answered in request
//! order.
//!
//! Each test starts its own node on its own data directory and uses its own
//! customer ids, so the tests run in parallel. Escalations come from the
//! fast model (`tests/models/fast.toml`): a ghost customer (paid, no access)
//! is warned at 2 s, breached at 4 s and re-escalated to cx_director every
//! 2 s after 6 s (BR: 1 s, 2 s, 4 s). Waits are deadlines, never sleeps.

mod common;

use common::api::*;
use common::{NodeProcess, event, fast_model, fresh_dir, ingest};
use handoff::api::pb;
use tonic::Code;

#[tokio::test]
async fn ingest_applies_deduplicates_and_rejects_with_reasons() {
    let node = NodeProcess::start(&fresh_dir("api-ingest"), &fast_model());
    let mut client = node.lifecycle().await;

    // APPLIED, with states, transitions and SLA changes; occurred_at unset
    // means the time of arrival.
    let before = now_micros();
    let won = ingest(
        &mut client,
        event("won-1", "crm", "deal_won", "ing-a", "US"),
    )
    .await;
    let after = now_micros();
    assert_eq!(outcome(&won), pb::Outcome::Applied, "{won:?}");
    assert_eq!(won.reason, "");
    assert_eq!(
        won.states,
        states(&[
            ("lifecycle", "onboarding"),
            ("billing", "good_standing"),
            ("support", "idle")
        ])
    );
    assert_eq!(
        won.transitions,
        vec![pb::Transition {
            region: "lifecycle".into(),
            from: "lead".into(),
            to: "onboarding".into()
        }]
    );
    assert_eq!(won.sla_changes.len(), 1, "{won:?}");
    let started = &won.sla_changes[0];
    assert_eq!(started.sla, "onboarding_to_payment");
    assert_eq!(started.kind, pb::SlaChangeKind::Started as i32);
    let deadline = micros(&started.deadline) - 14 * 24 * 3600 * SECOND;
    assert!(
        (before..=after).contains(&deadline),
        "an unset occurred_at is the arrival time: the 14d deadline starts at {deadline}, not in [{before}, {after}]"
    );
    let view = customer(&mut client, "ing-a", 0)
        .await
        .expect("the customer exists");
    let contract = view
        .proofs
        .iter()
        .find(|p| p.proof == "contract")
        .expect("the contract proof");
    let by = contract.established_by.as_ref().expect("established");
    assert_eq!(by.id, "won-1");
    let occurred = micros(&by.occurred_at);
    assert!(
        (before..=after).contains(&occurred),
        "occurred_at {occurred} is not the arrival time [{before}, {after}]"
    );
    assert_eq!(view.timeline.len(), 1);

    // The payment moves it on: one SLA met, the ghost-customer SLA started.
    let paid_at = now_micros();
    let paid = ingest(
        &mut client,
        at(
            event("pay-1", "billing", "payment_succeeded", "ing-a", "US"),
            paid_at,
        ),
    )
    .await;
    assert_eq!(outcome(&paid), pb::Outcome::Applied, "{paid:?}");
    assert_eq!(paid.states["lifecycle"], "paid");
    let changes: Vec<(&str, i32)> = paid
        .sla_changes
        .iter()
        .map(|c| (c.sla.as_str(), c.kind))
        .collect();
    assert!(
        changes.contains(&("onboarding_to_payment", pb::SlaChangeKind::Met as i32)),
        "{paid:?}"
    );
    let ghost_sla = paid
        .sla_changes
        .iter()
        .find(|c| c.sla == "access_after_payment")
        .expect("the ghost-customer SLA started");
    assert_eq!(ghost_sla.kind, pb::SlaChangeKind::Started as i32);
    assert_eq!(micros(&ghost_sla.deadline), paid_at + 4 * SECOND);

    // DUPLICATE: the same (source, id) again changes nothing.
    let again = ingest(
        &mut client,
        event("won-1", "crm", "deal_won", "ing-a", "US"),
    )
    .await;
    assert_eq!(outcome(&again), pb::Outcome::Duplicate, "{again:?}");
    assert!(again.reason.contains("won-1"), "{}", again.reason);
    assert!(again.transitions.is_empty() && again.sla_changes.is_empty());
    assert_eq!(again.states["lifecycle"], "paid");
    let view = customer(&mut client, "ing-a", 0).await.expect("exists");
    let events: Vec<&str> = view
        .timeline
        .iter()
        .filter(|t| t.kind == pb::TimelineKind::Event as i32)
        .map(|t| t.summary.as_str())
        .collect();
    assert_eq!(events.len(), 2, "a duplicate is not stored: {events:?}");
    // The idempotency key is per source: the same id from another source
    // is another event.
    let other = ingest(
        &mut client,
        event("won-1", "support", "ticket_opened", "ing-a", ""),
    )
    .await;
    assert_eq!(outcome(&other), pb::Outcome::Applied, "{other:?}");

    // REJECTED: unknown to the model, with a reason naming the problem.
    let cases: &[(pb::Event, &[&str])] = &[
        (
            event("r1", "erp", "deal_won", "ing-a", ""),
            &["unknown source `erp`", "crm"],
        ),
        (
            event("r2", "crm", "deal_frozen", "ing-a", ""),
            &["`deal_frozen`", "deal_won"],
        ),
        (
            event("r3", "crm", "deal_won", "ing-b", ""),
            &["ing-b", "no market"],
        ),
        (
            event("r4", "crm", "deal_won", "ing-c", "XX"),
            &["market `XX` is not declared", "US"],
        ),
        (
            event("r5", "crm", "deal_won", "ing-a", "DE"),
            &["market US, not DE"],
        ),
    ];
    for (e, words) in cases {
        let r = ingest(&mut client, e.clone()).await;
        assert_eq!(outcome(&r), pb::Outcome::Rejected, "{e:?}: {r:?}");
        for w in *words {
            assert!(r.reason.contains(w), "{e:?}: `{}` lacks `{w}`", r.reason);
        }
        assert!(
            r.transitions.is_empty() && r.sla_changes.is_empty(),
            "{r:?}"
        );
    }
    // A rejected first event creates no customer.
    for id in ["ing-b", "ing-c"] {
        let e = customer(&mut client, id, 0).await.expect_err("not created");
        assert_eq!(e.code(), Code::NotFound, "{e}");
    }
    assert_eq!(
        customer(&mut client, "ing-a", 0)
            .await
            .expect("exists")
            .market,
        "US",
        "a rejected market change changes nothing"
    );

    // INVALID_ARGUMENT: malformed as data, with a message naming it.
    let long = "x".repeat(257);
    let future = now_micros() + 10 * 60 * SECOND;
    let cases: &[(pb::Event, &str)] = &[
        (event("", "crm", "deal_won", "ing-d", "US"), "id is empty"),
        (
            event(&long, "crm", "deal_won", "ing-d", "US"),
            "id is 257 characters long",
        ),
        (
            event("bell\u{7}", "crm", "deal_won", "ing-d", "US"),
            "control character",
        ),
        (
            event("e-ctl", "crm", "deal_won", "ing\nd", "US"),
            "customer id contains a control character",
        ),
        (
            event("e-nocust", "crm", "deal_won", "", "US"),
            "customer id is empty",
        ),
        (
            at(event("e-future", "crm", "deal_won", "ing-d", "US"), future),
            "occurred_at",
        ),
    ];
    for (e, words) in cases {
        let status = ingest_error(&mut client, e.clone()).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{e:?}: {status}");
        assert!(
            status.message().contains(words),
            "{e:?}: `{}` lacks `{words}`",
            status.message()
        );
    }
    let status = client
        .ingest(pb::IngestRequest { event: None })
        .await
        .expect_err("no event");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("no event"), "{status}");
    let e = customer(&mut client, "ing-d", 0)
        .await
        .expect_err("malformed events create nothing");
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn ingest_batch_answers_in_request_order() {
    let node = NodeProcess::start(&fresh_dir("api-batch"), &fast_model());
    let mut client = node.lifecycle().await;

    let events = vec![
        event("b1", "crm", "deal_won", "batch-a", "US"),
        event("", "crm", "deal_won", "batch-x", "US"),
        event("b2", "crm", "lead_created", "batch-b", "US"),
        event("b3", "crm", "deal_frozen", "batch-c", "US"),
        event("b4", "crm", "deal_won", "batch-d", "DE"),
        event("b5\u{1}", "crm", "deal_won", "batch-y", "US"),
    ];
    let results = client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect("the batch is accepted")
        .into_inner()
        .results;
    assert_eq!(results.len(), 6);
    let outcomes: Vec<pb::Outcome> = results.iter().map(outcome).collect();
    assert_eq!(
        outcomes,
        [
            pb::Outcome::Applied,
            pb::Outcome::Rejected,
            pb::Outcome::Applied,
            pb::Outcome::Rejected,
            pb::Outcome::Applied,
            pb::Outcome::Rejected,
        ]
    );
    assert_eq!(results[0].states["lifecycle"], "onboarding");
    assert!(
        results[1].reason.contains("id is empty"),
        "{:?}",
        results[1]
    );
    assert!(results[1].states.is_empty());
    assert_eq!(results[2].states["lifecycle"], "lead");
    assert!(
        results[3].reason.contains("deal_frozen"),
        "{:?}",
        results[3]
    );
    assert_eq!(results[4].states["lifecycle"], "onboarding");
    assert!(
        results[5].reason.contains("control character"),
        "{:?}",
        results[5]
    );
    for (id, market) in [("batch-a", "US"), ("batch-b", "US"), ("batch-d", "DE")] {
        let v = customer(&mut client, id, 0)
            .await
            .expect("created by the batch");
        assert_eq!(v.market, market);
    }
    for id in ["batch-x", "batch-c", "batch-y"] {
        let e = customer(&mut client, id, 0).await.expect_err("not created");
        assert_eq!(e.code(), Code::NotFound, "{id}: {e}");
    }

    // A redelivered batch: duplicates in their slots, new events applied.
    let results = client
        .ingest_batch(pb::IngestBatchRequest {
            events: vec![
                event("b6", "billing", "payment_succeeded", "batch-a", ""),
                event("b2", "crm", "lead_created", "batch-b", "US"),
            ],
        })
        .await
        .expect("accepted")
        .into_inner()
        .results;
    assert_eq!(outcome(&results[0]), pb::Outcome::Applied);
    assert_eq!(results[0].states["lifecycle"], "paid");
    assert_eq!(outcome(&results[1]), pb::Outcome::Duplicate);

    // Too large a batch is refused as a whole.
    let events = vec![event("big", "crm", "lead_created", "batch-big", "US"); 10_001];
    let status = client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("10000"), "{status}");
    let e = customer(&mut client, "batch-big", 0)
        .await
        .expect_err("nothing applied");
    assert_eq!(e.code(), Code::NotFound);
}
