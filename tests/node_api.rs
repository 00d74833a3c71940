//! Every call of the public API, over real gRPC, against the real `handoff`
//! binary on 127.0.0.1:0: what each answers, and how each fails (malformed
//! input, unknown customers, duplicates, denials with their reasons). Also
//! health, reflection, graceful shutdown, and the command-line clients as a
//! user runs them.
//!
//! Each test starts its own node on its own data directory and uses its own
//! customer ids, so the tests run in parallel. Escalations come from the
//! fast model (`tests/models/fast.toml`): a ghost customer (paid, no access)
//! is warned at 2 s, breached at 4 s and re-escalated to cx_director every
//! 2 s after 6 s (BR: 1 s, 2 s, 4 s). Waits are deadlines, never sleeps.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::{NodeProcess, event, eventually, fast_model, fresh_dir, handoff, ingest};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long escalations may take to arrive on a slow, busy machine.
const ESCALATION_WAIT: Duration = Duration::from_secs(30);
/// How long anything else may take.
const WAIT: Duration = Duration::from_secs(20);

const SECOND: i64 = 1_000_000;

// ---------------------------------------------------------------- helpers

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_micros() as i64
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("the timestamp is set");
    t.seconds * SECOND + i64::from(t.nanos) / 1000
}

fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(SECOND),
        nanos: (micros.rem_euclid(SECOND) * 1000) as i32,
    }
}

/// `e`, as having happened at `at` (microseconds since the epoch).
fn at(mut e: pb::Event, at: i64) -> pb::Event {
    e.occurred_at = Some(timestamp(at));
    e
}

fn outcome(r: &pb::IngestResult) -> pb::Outcome {
    pb::Outcome::try_from(r.outcome).expect("a known outcome")
}

fn kind(e: &pb::EscalationEvent) -> pb::EscalationKind {
    pb::EscalationKind::try_from(e.kind).expect("a known kind")
}

fn severity(s: i32) -> pb::Severity {
    pb::Severity::try_from(s).expect("a known severity")
}

fn states(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect()
}

async fn ingest_error(client: &mut LifecycleClient<Channel>, e: pb::Event) -> Status {
    client
        .ingest(pb::IngestRequest { event: Some(e) })
        .await
        .expect_err("the event is refused")
}

async fn customer(
    client: &mut LifecycleClient<Channel>,
    id: &str,
    timeline_limit: u32,
) -> Result<pb::CustomerView, Status> {
    client
        .get_customer(pb::GetCustomerRequest {
            customer_id: id.into(),
            timeline_limit,
        })
        .await
        .map(|r| r.into_inner())
}

async fn authorize(
    client: &mut LifecycleClient<Channel>,
    id: &str,
    team: &str,
    action: &str,
) -> Result<pb::Decision, Status> {
    client
        .authorize(pb::AuthorizeRequest {
            customer_id: id.into(),
            team: team.into(),
            action: action.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn check_message(
    client: &mut LifecycleClient<Channel>,
    id: &str,
    class: &str,
) -> Result<pb::Decision, Status> {
    client
        .check_message(pb::CheckMessageRequest {
            customer_id: id.into(),
            message_class: class.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn list_open(
    client: &mut EscalationsClient<Channel>,
    team: &str,
) -> Result<Vec<pb::OpenEscalation>, Status> {
    client
        .list_open(pb::ListOpenRequest { team: team.into() })
        .await
        .map(|r| r.into_inner().escalations)
}

async fn acknowledge(
    client: &mut EscalationsClient<Channel>,
    id: &str,
    team: &str,
) -> Result<pb::AcknowledgeResult, Status> {
    client
        .acknowledge(pb::AcknowledgeRequest {
            escalation_id: id.into(),
            team: team.into(),
            note: "on it".into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn subscription(
    teams: &[&str],
    markets: &[&str],
    min: pb::Severity,
    cursor: &str,
) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        teams: teams.iter().map(|t| t.to_string()).collect(),
        markets: markets.iter().map(|m| m.to_string()).collect(),
        min_severity: min as i32,
        cursor: cursor.into(),
    }
}

type Events = tonic::Streaming<pb::EscalationEvent>;

async fn subscribe(node: &NodeProcess, request: pb::SubscribeRequest) -> Events {
    node.escalations()
        .await
        .subscribe(request)
        .await
        .expect("subscribe succeeds")
        .into_inner()
}

/// Reads `stream` until `done` holds for what was read; panics after
/// `within` or when the stream ends first.
async fn read_until(
    stream: &mut Events,
    within: Duration,
    what: &str,
    mut done: impl FnMut(&[pb::EscalationEvent]) -> bool,
) -> Vec<pb::EscalationEvent> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Ok(Ok(Some(e))) => seen.push(e),
            Ok(Ok(None)) => panic!("the stream ended while waiting for {what}; read {seen:#?}"),
            Ok(Err(s)) => panic!("the stream failed while waiting for {what}: {s}"),
            Err(_) => panic!("timed out after {within:?} waiting for {what}; read {seen:#?}"),
        }
    }
    seen
}

/// Reads exactly `n` events.
async fn read_n(stream: &mut Events, n: usize, what: &str) -> Vec<pb::EscalationEvent> {
    read_until(stream, ESCALATION_WAIT, what, |seen| seen.len() >= n).await
}

/// What identifies one delivered escalation event.
fn key(e: &pb::EscalationEvent) -> (String, i32) {
    (e.escalation_id.clone(), e.kind)
}

fn keys<'a>(events: impl IntoIterator<Item = &'a pb::EscalationEvent>) -> BTreeSet<(String, i32)> {
    events.into_iter().map(key).collect()
}

/// Reads a filtered subscriber's share of `log` (which is complete: nothing
/// more escalates) and checks it is exactly that share.
async fn share(
    stream: &mut Events,
    log: &[pb::EscalationEvent],
    what: &str,
    keep: impl Fn(&pb::EscalationEvent) -> bool,
) -> Vec<pb::EscalationEvent> {
    let share: Vec<&pb::EscalationEvent> = log.iter().filter(|e| keep(e)).collect();
    assert!(!share.is_empty() && share.len() < log.len(), "{what}");
    let got = read_n(stream, share.len(), what).await;
    assert!(got.iter().all(&keep), "{what}: {got:#?}");
    assert_eq!(keys(&got), keys(share), "{what}");
    got
}

/// Creates a ghost customer: deal won, then paid (now) without access, so
/// `access_after_payment` runs.
async fn ghost(client: &mut LifecycleClient<Channel>, id: &str, market: &str) {
    let won = ingest(
        client,
        event(&format!("{id}-won"), "crm", "deal_won", id, market),
    )
    .await;
    assert_eq!(outcome(&won), pb::Outcome::Applied, "{won:?}");
    let paid = ingest(
        client,
        event(
            &format!("{id}-paid"),
            "billing",
            "payment_succeeded",
            id,
            "",
        ),
    )
    .await;
    assert_eq!(outcome(&paid), pb::Outcome::Applied, "{paid:?}");
    assert_eq!(paid.states["lifecycle"], "paid");
}

/// Is `e` the firing of `tier` (repeat 0) of `customer`'s ghost SLA?
fn fired(e: &pb::EscalationEvent, customer: &str, tier: u32) -> bool {
    e.customer_id == customer
        && e.sla == "access_after_payment"
        && e.tier == tier
        && kind(e) != pb::EscalationKind::Resolved
}

// ---------------------------------------------------------------- Ingest

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

// ---------------------------------------------------------------- questions

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

// ---------------------------------------------------------------- Escalations

#[tokio::test]
async fn subscribers_follow_ghost_customers_to_resolution_and_resume() {
    let node = NodeProcess::start(&fresh_dir("api-subscribe"), &fast_model());
    let mut client = node.lifecycle().await;
    let mut esc = node.escalations().await;

    // Requests a node refuses.
    for (request, words) in [
        (
            subscription(&[], &[], pb::Severity::Unspecified, "garbage"),
            "garbage",
        ),
        (
            subscription(&[], &[], pb::Severity::Unspecified, "h1-1-2"),
            "shards",
        ),
        (
            subscription(&["janitors"], &[], pb::Severity::Unspecified, ""),
            "janitors",
        ),
        (
            subscription(&[], &["br"], pb::Severity::Unspecified, ""),
            "market `br` is not declared",
        ),
    ] {
        let e = esc.subscribe(request).await.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains(words), "{e}");
    }
    let e = esc
        .subscribe(pb::SubscribeRequest {
            min_severity: 9,
            ..Default::default()
        })
        .await
        .expect_err("not a severity");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    let none = pb::Severity::Unspecified;
    let mut all = subscribe(&node, subscription(&[], &[], none, "")).await;
    let mut director = subscribe(&node, subscription(&["cx_director"], &[], none, "")).await;
    let mut brazil = subscribe(&node, subscription(&[], &["BR"], none, "")).await;
    let mut high = subscribe(&node, subscription(&[], &[], pb::Severity::High, "")).await;

    ghost(&mut client, "sub-us", "US").await;
    ghost(&mut client, "sub-br", "BR").await;

    // Each ghost is warned, breached, then re-escalated to cx_director.
    let fired_all = |seen: &[pb::EscalationEvent]| {
        ["sub-us", "sub-br"]
            .iter()
            .all(|c| (0..3).all(|tier| seen.iter().any(|e| fired(e, c, tier))))
    };
    let mut log = read_until(
        &mut all,
        ESCALATION_WAIT,
        "three tiers of both ghosts",
        fired_all,
    )
    .await;
    for c in ["sub-us", "sub-br"] {
        let position = |tier| {
            log.iter()
                .position(|e| fired(e, c, tier))
                .expect("seen above")
        };
        assert!(
            position(0) < position(1) && position(1) < position(2),
            "{c}: {log:#?}"
        );
        let warned = &log[position(0)];
        assert_eq!(kind(warned), pb::EscalationKind::TierReached);
        assert_eq!(warned.team, "provisioning");
        assert_eq!(severity(warned.severity), pb::Severity::Low);
        assert_eq!(warned.handoff, "billing->provisioning");
        assert_eq!(warned.states["lifecycle"], "paid");
        assert!(!warned.late_attach);
        let breached = &log[position(1)];
        assert_eq!(kind(breached), pb::EscalationKind::Breached);
        assert_eq!(breached.team, "provisioning");
        assert_eq!(severity(breached.severity), pb::Severity::High);
        assert_eq!(micros(&breached.due), micros(&breached.deadline));
        let director = &log[position(2)];
        assert_eq!(kind(director), pb::EscalationKind::TierReached);
        assert_eq!(director.team, "cx_director");
        assert_eq!(severity(director.severity), pb::Severity::Critical);
        assert_eq!(director.repeat, 0);
        assert_eq!(
            micros(&director.due),
            micros(&director.deadline) + 2 * SECOND
        );
    }
    for e in &log {
        let market = if e.customer_id == "sub-us" {
            "US"
        } else {
            "BR"
        };
        assert_eq!(e.market, market, "{e:?}");
    }

    // Access arrives: the SLAs complete late and every escalation resolves.
    for c in ["sub-us", "sub-br"] {
        let r = ingest(
            &mut client,
            event(&format!("{c}-access"), "access", "access_granted", c, ""),
        )
        .await;
        assert_eq!(r.states["lifecycle"], "active", "{r:?}");
        let late = r
            .sla_changes
            .iter()
            .find(|s| s.sla == "access_after_payment")
            .expect("the ghost SLA ended");
        assert_eq!(late.kind, pb::SlaChangeKind::Late as i32);
    }
    let resolved_all = |seen: &[pb::EscalationEvent]| {
        let fired: Vec<_> = seen
            .iter()
            .filter(|e| kind(e) != pb::EscalationKind::Resolved)
            .collect();
        fired.iter().all(|f| {
            seen.iter().any(|r| {
                kind(r) == pb::EscalationKind::Resolved && r.escalation_id == f.escalation_id
            })
        })
    };
    let rest = read_until(
        &mut all,
        ESCALATION_WAIT,
        "every escalation resolved",
        |seen| {
            let mut both = log.clone();
            both.extend_from_slice(seen);
            resolved_all(&both)
        },
    )
    .await;
    log.extend(rest);
    for r in log
        .iter()
        .filter(|e| kind(e) == pb::EscalationKind::Resolved)
    {
        let f = log
            .iter()
            .find(|f| f.escalation_id == r.escalation_id && kind(f) != pb::EscalationKind::Resolved)
            .expect("a resolution follows its firing");
        assert_eq!(
            (r.team.as_str(), r.severity, r.tier),
            (f.team.as_str(), f.severity, f.tier)
        );
    }
    let everything = keys(&log);
    assert_eq!(everything.len(), log.len(), "no event twice: {log:#?}");

    // Both SLAs are over: nothing more escalates, so each filtered
    // subscriber has exactly its share of `log`.
    let directed = share(&mut director, &log, "team cx_director", |e| {
        e.team == "cx_director"
    })
    .await;
    share(&mut brazil, &log, "market BR", |e| e.market == "BR").await;
    share(&mut high, &log, "severity high and above", |e| {
        e.severity >= pb::Severity::High as i32
    })
    .await;

    // A filtered subscriber resumes from its own cursors.
    let mut resumed = subscribe(
        &node,
        subscription(&["cx_director"], &[], none, &directed[0].cursor),
    )
    .await;
    let after = read_n(
        &mut resumed,
        directed.len() - 1,
        "the resumed cx_director stream",
    )
    .await;
    assert_eq!(keys(&after), keys(&directed[1..]));

    // "earliest" replays everything retained.
    let mut replay = subscribe(&node, subscription(&[], &[], none, "earliest")).await;
    let replayed = read_n(&mut replay, log.len(), "the replay").await;
    assert_eq!(keys(&replayed), everything);

    // Resuming after the cursor of the n-th event yields exactly the events
    // after it: no gap, no repeat.
    for n in [1, replayed.len() / 2, replayed.len() - 1] {
        let cursor = &replayed[n - 1].cursor;
        let mut resumed = subscribe(&node, subscription(&[], &[], none, cursor)).await;
        let after = read_n(&mut resumed, replayed.len() - n, "the resumed stream").await;
        assert_eq!(
            keys(&after),
            keys(&replayed[n..]),
            "resumed after event {n}"
        );
        assert_eq!(
            keys(&after).len(),
            after.len(),
            "no repeats after event {n}"
        );
    }
}

#[tokio::test]
async fn list_open_and_acknowledge_follow_a_ghost_customer() {
    let node = NodeProcess::start(&fresh_dir("api-ack"), &fast_model());
    let mut client = node.lifecycle().await;
    let mut esc = node.escalations().await;

    let e = list_open(&mut esc, "janitors")
        .await
        .expect_err("undeclared team");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("janitors"), "{e}");
    assert!(
        list_open(&mut esc, "provisioning")
            .await
            .expect("listed")
            .is_empty()
    );

    ghost(&mut client, "ack-us", "US").await;
    let ours = |open: Vec<pb::OpenEscalation>| -> Vec<pb::OpenEscalation> {
        open.into_iter()
            .filter(|e| e.customer_id == "ack-us")
            .collect()
    };

    // The 50% warning is open for provisioning.
    let warning = eventually(ESCALATION_WAIT, "the 50% warning", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "provisioning").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 0)
        }
    })
    .await;
    assert_eq!(warning.kind, pb::EscalationKind::TierReached as i32);
    assert_eq!(warning.sla, "access_after_payment");
    assert_eq!(warning.escalation_id, "ack-us:access_after_payment:1:0:0");
    assert!(!warning.acknowledged);

    // Marketing may not acknowledge it; provisioning may.
    let e = acknowledge(&mut esc, &warning.escalation_id, "marketing")
        .await
        .expect_err("not marketing's");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("marketing may not acknowledge")
            && e.message().contains("only provisioning may"),
        "{e}"
    );
    let ok = acknowledge(&mut esc, &warning.escalation_id, "provisioning")
        .await
        .expect("the notified team acknowledges");
    assert!(ok.acknowledged, "{ok:?}");
    let open = ours(list_open(&mut esc, "provisioning").await.expect("listed"));
    let acked = open
        .iter()
        .find(|e| e.escalation_id == warning.escalation_id)
        .expect("still open until resolved");
    assert!(acked.acknowledged);

    // Errors: unknown escalations and garbage ids.
    for id in [
        "ack-us:access_after_payment:7:0:0",
        "ack-nobody:access_after_payment:1:0:0",
    ] {
        let e = acknowledge(&mut esc, id, "provisioning")
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), Code::NotFound, "{id}: {e}");
    }
    let e = acknowledge(&mut esc, "garbage", "provisioning")
        .await
        .expect_err("garbage");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("garbage"), "{e}");
    let e = acknowledge(&mut esc, &warning.escalation_id, "")
        .await
        .expect_err("no team");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = acknowledge(&mut esc, &warning.escalation_id, "janitors")
        .await
        .expect_err("an undeclared team");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(
        e.message().contains("team `janitors` is not declared"),
        "{e}"
    );

    // Acknowledging does not stop later tiers: the breach, then cx_director.
    let breach = eventually(ESCALATION_WAIT, "the breach", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "provisioning").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 1)
        }
    })
    .await;
    assert_eq!(breach.kind, pb::EscalationKind::Breached as i32);
    assert!(!breach.acknowledged);
    let director = eventually(ESCALATION_WAIT, "the cx_director re-escalation", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "cx_director").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 2)
        }
    })
    .await;
    assert_eq!(director.team, "cx_director");
    assert!(
        ours(list_open(&mut esc, "provisioning").await.expect("listed"))
            .iter()
            .all(|e| e.team == "provisioning"),
        "ListOpen is by team"
    );
    let e = acknowledge(&mut esc, &director.escalation_id, "marketing")
        .await
        .expect_err("not marketing's");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("cx_director (notified) or provisioning (the SLA's owner)"),
        "{e}"
    );
    // The SLA's owner may acknowledge a tier notified to someone else, and
    // so may the notified team.
    for team in ["provisioning", "cx_director"] {
        let ok = acknowledge(&mut esc, &director.escalation_id, team)
            .await
            .unwrap_or_else(|e| panic!("{team} may acknowledge: {e}"));
        assert!(ok.acknowledged, "{team}: {ok:?}");
    }
    let open = ours(list_open(&mut esc, "cx_director").await.expect("listed"));
    assert!(
        open.iter()
            .any(|e| e.escalation_id == director.escalation_id && e.acknowledged),
        "{open:?}"
    );
    let all_teams = ours(list_open(&mut esc, "").await.expect("listed"));
    assert!(all_teams.iter().any(|e| e.team == "cx_director"));
    assert!(all_teams.iter().any(|e| e.team == "provisioning"));
    let v = customer(&mut client, "ack-us", 0).await.expect("exists");
    assert!(
        v.timeline
            .iter()
            .any(|t| t.kind == pb::TimelineKind::Acknowledged as i32),
        "{:?}",
        v.timeline
    );

    // Access: nothing stays open.
    ingest(
        &mut client,
        event("ack-access", "access", "access_granted", "ack-us", ""),
    )
    .await;
    for team in ["provisioning", "cx_director", ""] {
        let open = ours(list_open(&mut esc, team).await.expect("listed"));
        assert!(open.is_empty(), "{team}: {open:?}");
    }
    assert!(
        customer(&mut client, "ack-us", 0)
            .await
            .expect("exists")
            .escalations
            .is_empty()
    );
}

// ---------------------------------------------------------------- the node

#[tokio::test]
async fn health_and_reflection_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let node = NodeProcess::start(&fresh_dir("api-health"), &fast_model());
    let mut health = HealthClient::new(node.channel().await);
    for service in ["", "handoff.v1.Lifecycle", "handoff.v1.Escalations"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of `{service}`: {e}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "`{service}`");
    }

    let mut reflection = ServerReflectionClient::new(node.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "handoff.v1.Lifecycle",
        "handoff.v1.Escalations",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&name), "{name} is not in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_and_exits_zero() {
    let mut node = NodeProcess::start(&fresh_dir("api-sigterm"), &fast_model());
    let mut client = node.lifecycle().await;
    ingest(&mut client, event("s1", "crm", "deal_won", "term-a", "US")).await;
    let mut stream = subscribe(&node, subscription(&[], &[], pb::Severity::Unspecified, "")).await;
    let reader = tokio::spawn(async move { stream.message().await });

    let started = Instant::now();
    let status = tokio::task::block_in_place(|| node.terminate());
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    let ended = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the open stream ends with the node, it does not hang")
        .expect("the reader task");
    assert!(
        matches!(ended, Ok(None)),
        "the stream ends cleanly (subscribers resume from their cursor): {ended:?}"
    );

    // What was acknowledged before the stop is there after it.
    node.restart();
    let mut client = node.lifecycle().await;
    let v = customer(&mut client, "term-a", 0).await.expect("kept");
    assert_eq!(v.regions[0].state, "onboarding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_compact_runs_on_a_stopped_node_and_keeps_everything() {
    let mut node = NodeProcess::start(&fresh_dir("api-compact"), &fast_model());
    let mut client = node.lifecycle().await;
    for i in 0..50 {
        let c = format!("compact-{i}");
        ingest(
            &mut client,
            event(&format!("w{i}"), "crm", "deal_won", &c, "US"),
        )
        .await;
    }
    let data = node.data.to_str().expect("a UTF-8 temp path").to_owned();

    // Not while the node has the directory open.
    let (code, _, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &data]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("another process has it open"), "{err}");

    let status = tokio::task::block_in_place(|| node.terminate());
    assert!(status.success(), "exit status {status}");
    let (code, out, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &data]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("bytes before") && out.contains("bytes after"),
        "{out}"
    );

    // A directory that is not a node's is named, and left alone.
    let elsewhere = fresh_dir("api-compact-not-data");
    std::fs::create_dir_all(&elsewhere).expect("make a directory");
    let elsewhere = elsewhere.to_str().expect("a UTF-8 temp path").to_owned();
    let (code, _, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &elsewhere]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not a handoff data directory"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).expect("readable").count(), 0);

    // Everything acknowledged is still there.
    node.restart();
    let mut client = node.lifecycle().await;
    for i in [0, 49] {
        let v = customer(&mut client, &format!("compact-{i}"), 0)
            .await
            .expect("kept through compaction");
        assert_eq!(v.regions[0].state, "onboarding");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_forever_for_a_subscriber_that_stopped_reading() {
    let mut node = NodeProcess::start(&fresh_dir("api-stalled"), &fast_model());
    let mut client = node.lifecycle().await;
    // A monitor that subscribes from the start and then stops reading: a
    // small HTTP/2 window, so the node soon cannot send it anything more.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
        .expect("a valid uri")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("connects");
    let _stalled = EscalationsClient::new(channel)
        .subscribe(subscription(
            &[],
            &[],
            pb::Severity::Unspecified,
            "earliest",
        ))
        .await
        .expect("subscribed");
    // Twenty customers paid a minute ago without access: twenty late
    // breaches at once, far more than the subscriber's window.
    let t0 = now_micros() - 120 * SECOND;
    let mut events = Vec::new();
    for i in 0..20 {
        let c = format!("stall-{i}");
        events.push(at(event(&format!("w{i}"), "crm", "deal_won", &c, "US"), t0));
    }
    client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect("accepted");
    let events = (0..20)
        .map(|i| {
            let c = format!("stall-{i}");
            at(
                event(&format!("p{i}"), "billing", "payment_succeeded", &c, ""),
                t0 + 60 * SECOND,
            )
        })
        .collect();
    client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect("accepted");
    let mut esc = node.escalations().await;
    assert_eq!(
        list_open(&mut esc, "provisioning")
            .await
            .expect("listed")
            .len(),
        20
    );

    let started = Instant::now();
    let status = tokio::task::block_in_place(|| node.terminate());
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
}

// ---------------------------------------------------------------- the CLI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_clients_work_as_a_user_runs_them() {
    let node = NodeProcess::start(&fresh_dir("api-cli"), &fast_model());
    let target = node.addr.as_str();
    let run = |args: &[&str]| tokio::task::block_in_place(|| handoff(args));

    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "cli-x",
        "--market",
        "US",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("applied crm.deal_won for cli-x"), "{out}");
    assert!(out.contains("lifecycle: lead -> onboarding"), "{out}");

    let (code, out, err) = run(&["customer", "get", "cli-x", "--target", target]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("customer cli-x (market US"), "{out}");
    for (region, state) in [
        ("lifecycle", "onboarding"),
        ("billing", "good_standing"),
        ("support", "idle"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().take(2).eq([region, state])),
            "no `{region} {state}` line in:\n{out}"
        );
    }

    // A ghost in Brazil (1 s to the first warning), then the stream.
    for (ty, source, market) in [
        ("deal_won", "crm", "BR"),
        ("payment_succeeded", "billing", ""),
    ] {
        let (code, out, err) = run(&[
            "ingest",
            "--target",
            target,
            "--source",
            source,
            "--type",
            ty,
            "--customer",
            "cli-br",
            "--market",
            market,
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.starts_with("applied"), "{out}");
    }
    let esc = node.escalations().await;
    eventually(ESCALATION_WAIT, "an escalation", || {
        let mut esc = esc.clone();
        async move { (!list_open(&mut esc, "").await.expect("listed").is_empty()).then_some(()) }
    })
    .await;
    let (code, out, err) = run(&[
        "escalations",
        "tail",
        "--target",
        target,
        "--count",
        "1",
        "--cursor",
        "earliest",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("tier_reached cli-br access_after_payment tier 0 -> provisioning (low)"),
        "{out}"
    );
    assert!(out.contains("[cursor h1-"), "{out}");

    // Wrong input: exit 1 with a message that says what to fix.
    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "cli-y",
        "--market",
        "US",
        "--attr",
        "novalue",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("--attr novalue: write key=value"), "{err}");
    let (code, out, err) = run(&["customer", "get", "cli-nobody", "--target", target]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("not found: unknown customer `cli-nobody`"),
        "{err}"
    );
    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "",
        "--market",
        "US",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("invalid argument") && err.contains("customer id is empty"),
        "{err}"
    );
}
