//! Helpers for the public API over gRPC, shared by the `node_*` tests:
//! calls with their requests built, escalation subscriptions and reading
//! them with a deadline, and the ghost customer the fast model escalates.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::Status;
use tonic::transport::Channel;

use super::{NodeProcess, event, ingest};

/// How long escalations may take to arrive on a slow, busy machine.
pub const ESCALATION_WAIT: Duration = Duration::from_secs(30);
/// How long anything else may take.
pub const WAIT: Duration = Duration::from_secs(20);

pub const SECOND: i64 = 1_000_000;

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_micros() as i64
}

pub fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("the timestamp is set");
    t.seconds * SECOND + i64::from(t.nanos) / 1000
}

pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(SECOND),
        nanos: (micros.rem_euclid(SECOND) * 1000) as i32,
    }
}

/// `e`, as having happened at `at` (microseconds since the epoch).
pub fn at(mut e: pb::Event, at: i64) -> pb::Event {
    e.occurred_at = Some(timestamp(at));
    e
}

pub fn outcome(r: &pb::IngestResult) -> pb::Outcome {
    pb::Outcome::try_from(r.outcome).expect("a known outcome")
}

pub fn kind(e: &pb::EscalationEvent) -> pb::EscalationKind {
    pb::EscalationKind::try_from(e.kind).expect("a known kind")
}

pub fn severity(s: i32) -> pb::Severity {
    pb::Severity::try_from(s).expect("a known severity")
}

pub fn states(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect()
}

pub async fn ingest_error(client: &mut LifecycleClient<Channel>, e: pb::Event) -> Status {
    client
        .ingest(pb::IngestRequest { event: Some(e) })
        .await
        .expect_err("the event is refused")
}

pub async fn customer(
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

/// The customer's whole view; panics (naming it) if it cannot be read.
pub async fn view(client: &mut LifecycleClient<Channel>, id: &str) -> pb::CustomerView {
    customer(client, id, 0)
        .await
        .unwrap_or_else(|s| panic!("customer {id}: {s}"))
}

pub async fn authorize(
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

pub async fn check_message(
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

pub async fn list_open(
    client: &mut EscalationsClient<Channel>,
    team: &str,
) -> Result<Vec<pb::OpenEscalation>, Status> {
    client
        .list_open(pb::ListOpenRequest { team: team.into() })
        .await
        .map(|r| r.into_inner().escalations)
}

pub async fn acknowledge(
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

pub fn subscription(
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

pub type Events = tonic::Streaming<pb::EscalationEvent>;

pub async fn subscribe(node: &NodeProcess, request: pb::SubscribeRequest) -> Events {
    node.escalations()
        .await
        .subscribe(request)
        .await
        .expect("subscribe succeeds")
        .into_inner()
}

/// Reads `stream` until `done` holds for what was read; panics after
/// `within` or when the stream ends first.
pub async fn read_until(
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
pub async fn read_n(stream: &mut Events, n: usize, what: &str) -> Vec<pb::EscalationEvent> {
    read_until(stream, ESCALATION_WAIT, what, |seen| seen.len() >= n).await
}

/// What identifies one delivered escalation event.
pub fn key(e: &pb::EscalationEvent) -> (String, i32) {
    (e.escalation_id.clone(), e.kind)
}

pub fn keys<'a>(
    events: impl IntoIterator<Item = &'a pb::EscalationEvent>,
) -> BTreeSet<(String, i32)> {
    events.into_iter().map(key).collect()
}

/// Reads a filtered subscriber's share of `log` (which is complete: nothing
/// more escalates) and checks it is exactly that share.
pub async fn share(
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
pub async fn ghost(client: &mut LifecycleClient<Channel>, id: &str, market: &str) {
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
pub fn fired(e: &pb::EscalationEvent, customer: &str, tier: u32) -> bool {
    e.customer_id == customer
        && e.sla == "access_after_payment"
        && e.tier == tier
        && kind(e) != pb::EscalationKind::Resolved
}
