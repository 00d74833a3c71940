//! The questions the node answers over real gRPC against the real `handoff`
//! binary on 127.0.0.1:0: authorize and check_message with their reasons,
//! and get_customer's unified view.
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
async fn authorize_and_check_message_answer_with_reasons() {
    let node = NodeProcess::start(&fresh_dir("api-authorize"), &fast_model());
    let mut client = node.lifecycle().await;

    ingest(
        &mut client,
        event("l1", "crm", "lead_created", "auth-lead", "US"),
    )
    .await;
    let d = authorize(&mut client, "auth-lead", "marketing", "nurture")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reason, "");
    assert_eq!(d.owner, "marketing");
    assert_eq!(
        d.states,
        states(&[
            ("lifecycle", "lead"),
            ("billing", "good_standing"),
            ("support", "idle")
        ])
    );

    // An active customer: access first, then the payment takes it through
    // paid to active in one chain.
    ingest(
        &mut client,
        event("a1", "crm", "deal_won", "auth-active", "US"),
    )
    .await;
    ingest(
        &mut client,
        event("a2", "access", "access_granted", "auth-active", ""),
    )
    .await;
    let paid = ingest(
        &mut client,
        event("a3", "billing", "payment_succeeded", "auth-active", ""),
    )
    .await;
    assert_eq!(paid.states["lifecycle"], "active", "{paid:?}");

    // Re-onboarding an active customer is denied, naming states and owners.
    let d = authorize(&mut client, "auth-active", "concierge", "send_onboarding")
        .await
        .expect("answered");
    assert!(!d.allowed, "{d:?}");
    for w in [
        "concierge may not send_onboarding",
        "lifecycle is active (owner success)",
        "billing is good_standing (owner billing)",
    ] {
        assert!(d.reason.contains(w), "`{}` lacks `{w}`", d.reason);
    }
    assert_eq!(d.owner, "success");
    assert_eq!(d.states["lifecycle"], "active");
    let v = customer(&mut client, "auth-active", 1)
        .await
        .expect("exists");
    assert_eq!(
        v.timeline[0].kind,
        pb::TimelineKind::Denied as i32,
        "the denial is kept in the timeline: {v:?}"
    );
    let d = authorize(&mut client, "auth-active", "success", "qbr")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    let d = authorize(&mut client, "auth-active", "janitors", "qbr")
        .await
        .expect("answered");
    assert!(!d.allowed && d.reason.contains("`janitors`"), "{d:?}");

    let e = authorize(&mut client, "auth-nobody", "success", "qbr")
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("auth-nobody"), "{e}");
    let e = authorize(&mut client, "", "success", "qbr")
        .await
        .expect_err("empty");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("customer_id"), "{e}");

    // Messages: renewals go out to an active customer, not during a dispute.
    let d = check_message(&mut client, "auth-active", "renewal")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.owner, "success");
    ingest(
        &mut client,
        event("a4", "billing", "dispute_opened", "auth-active", ""),
    )
    .await;
    let d = check_message(&mut client, "auth-active", "renewal")
        .await
        .expect("answered");
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.reason.contains("renewal") && d.reason.contains("billing is disputed"),
        "{}",
        d.reason
    );
    assert_eq!(d.states["billing"], "disputed");
    let d = check_message(&mut client, "auth-active", "transactional")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    let d = check_message(&mut client, "auth-active", "smoke_signals")
        .await
        .expect("answered");
    assert!(!d.allowed, "{d:?}");
    assert!(d.reason.contains("`smoke_signals`"), "{}", d.reason);
    let e = check_message(&mut client, "auth-nobody", "renewal")
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    let e = check_message(&mut client, "auth-active", "")
        .await
        .expect_err("empty class");
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn get_customer_shows_the_unified_view() {
    let node = NodeProcess::start(&fresh_dir("api-view"), &fast_model());
    let mut client = node.lifecycle().await;

    let e = customer(&mut client, "view-nobody", 0)
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("view-nobody"), "{e}");
    let e = customer(&mut client, "", 0).await.expect_err("empty");
    assert_eq!(e.code(), Code::InvalidArgument);

    // Two minutes ago a lead, then a won deal.
    let t0 = now_micros() - 120 * SECOND;
    ingest(
        &mut client,
        at(event("v1", "crm", "lead_created", "view-a", "DE"), t0),
    )
    .await;
    ingest(
        &mut client,
        at(event("v2", "crm", "deal_won", "view-a", ""), t0 + SECOND),
    )
    .await;
    let v = customer(&mut client, "view-a", 0).await.expect("exists");
    assert_eq!(v.customer_id, "view-a");
    assert_eq!(v.market, "DE");
    assert_eq!(v.model_version, 1);
    assert_eq!(v.owner, "concierge");
    let regions: Vec<(&str, &str, &str)> = v
        .regions
        .iter()
        .map(|r| (r.region.as_str(), r.state.as_str(), r.owner.as_str()))
        .collect();
    assert_eq!(
        regions,
        [
            ("lifecycle", "onboarding", "concierge"),
            ("billing", "good_standing", "billing"),
            ("support", "idle", "support"),
        ]
    );
    assert_eq!(micros(&v.regions[0].since), t0 + SECOND);
    assert_eq!(v.regions[2].since, None, "support never moved");
    assert_eq!(v.proofs.len(), 1, "{v:?}");
    assert_eq!(v.proofs[0].proof, "contract");
    assert!(v.proofs[0].holds);
    let by = v.proofs[0].established_by.as_ref().expect("established");
    assert_eq!(
        (by.id.as_str(), by.source.as_str(), by.r#type.as_str()),
        ("v2", "crm", "deal_won")
    );
    assert_eq!(micros(&by.occurred_at), t0 + SECOND);
    assert_eq!(v.slas.len(), 1, "{v:?}");
    let sla = &v.slas[0];
    assert_eq!(sla.sla, "onboarding_to_payment");
    assert_eq!(sla.owner, "concierge");
    assert_eq!(sla.handoff, "sales->concierge");
    assert_eq!(micros(&sla.started_at), t0 + SECOND);
    assert_eq!(micros(&sla.deadline), t0 + SECOND + 14 * 24 * 3600 * SECOND);
    assert!(!sla.breached);
    let next = sla.next_tier.as_ref().expect("a tier is pending");
    assert_eq!((next.tier, next.team.as_str()), (0, "concierge"));
    assert_eq!(severity(next.severity), pb::Severity::Medium);
    // 75% of 14 days.
    assert_eq!(micros(&next.at), t0 + SECOND + 252 * 3600 * SECOND);
    assert!(v.escalations.is_empty());
    // The timeline, newest first, and its limit.
    assert_eq!(v.timeline.len(), 2);
    assert!(
        v.timeline[0].summary.contains("deal_won"),
        "{:?}",
        v.timeline
    );
    assert!(
        v.timeline[1].summary.contains("lead_created"),
        "{:?}",
        v.timeline
    );
    assert_eq!(v.timeline[0].kind, pb::TimelineKind::Event as i32);
    assert_eq!(v.timeline[0].outcome, pb::Outcome::Applied as i32);
    let v = customer(&mut client, "view-a", 1).await.expect("exists");
    assert_eq!(v.timeline.len(), 1);
    assert!(
        v.timeline[0].summary.contains("deal_won"),
        "{:?}",
        v.timeline
    );

    // Paid a minute ago with no access: the SLA attaches already breached,
    // and the breach fires at once, marked late.
    let paid_at = t0 + 60 * SECOND;
    ingest(
        &mut client,
        at(
            event("v3", "billing", "payment_succeeded", "view-a", ""),
            paid_at,
        ),
    )
    .await;
    let v = customer(&mut client, "view-a", 0).await.expect("exists");
    assert_eq!(v.owner, "provisioning");
    let payment = v
        .proofs
        .iter()
        .find(|p| p.proof == "payment")
        .expect("the payment proof");
    assert_eq!(
        payment.established_by.as_ref().map(|e| e.id.as_str()),
        Some("v3")
    );
    let sla = v
        .slas
        .iter()
        .find(|s| s.sla == "access_after_payment")
        .expect("the ghost-customer SLA is open");
    assert_eq!(sla.owner, "provisioning");
    assert_eq!(sla.handoff, "billing->provisioning");
    assert_eq!(micros(&sla.started_at), paid_at);
    assert_eq!(micros(&sla.deadline), paid_at + 4 * SECOND);
    assert!(sla.breached);
    let next = sla.next_tier.as_ref().expect("re-escalations are pending");
    assert_eq!((next.tier, next.team.as_str()), (2, "cx_director"));
    assert_eq!(severity(next.severity), pb::Severity::Critical);
    let since_first = micros(&next.at) - (paid_at + 6 * SECOND);
    assert!(
        since_first >= 0 && since_first % (2 * SECOND) == 0,
        "re-escalations are due at deadline + 2s + k * 2s, not {since_first}"
    );
    let breach = v
        .escalations
        .iter()
        .find(|e| e.tier == 1)
        .unwrap_or_else(|| panic!("the late breach is open: {v:?}"));
    assert_eq!(breach.kind, pb::EscalationKind::Breached as i32);
    assert!(breach.late_attach);
    assert!(!breach.acknowledged);
    assert_eq!(
        (breach.team.as_str(), breach.sla.as_str()),
        ("provisioning", "access_after_payment")
    );
    assert_eq!(severity(breach.severity), pb::Severity::High);
    assert_eq!(micros(&breach.deadline), paid_at + 4 * SECOND);
    assert!(micros(&breach.fired_at) >= paid_at + 4 * SECOND);
    assert_eq!(
        (breach.customer_id.as_str(), breach.market.as_str()),
        ("view-a", "DE")
    );
    assert!(
        !v.escalations.iter().any(|e| e.tier == 0),
        "the 50% tier was already past when the SLA attached: skipped"
    );
    assert!(
        v.timeline
            .iter()
            .any(|t| t.kind == pb::TimelineKind::Escalation as i32),
        "{:?}",
        v.timeline
    );
}
