//! The client of the black-box cluster tests (`cluster`, `cluster_failover`,
//! and the log replay of `crash`): real node processes on one database,
//! calls sent to any node and retried with the same event id until one
//! acknowledges them, a log of every call and its answer, a subscriber that
//! resumes by cursor on whichever node answers, and the checks made at the
//! end: every acknowledged event applied exactly once, every escalation
//! recorded exactly once in the shared log and delivered.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff::api::pb;
use tonic::transport::{Channel, Endpoint};

use super::{NodeProcess, event, eventually, fresh_dir, root};

/// Starts a node per id, each on its own data directory
/// (`target/test-data/{prefix}-{id}-…`), all on the store at `url` with the
/// crash model (SLA tiers at 1.5 s and 3 s), keeping what they log.
pub fn start_nodes(prefix: &str, url: &str, ids: &[&str]) -> Vec<NodeProcess> {
    let model = root().join("tests/models/crash.toml");
    ids.iter()
        .map(|id| {
            NodeProcess::start_capturing(
                &fresh_dir(&format!("{prefix}-{id}")),
                &model,
                &["--store", url, "--node-id", id],
                "warn",
            )
        })
        .collect()
}

/// One acknowledged ingest.
pub struct Ack {
    pub customer: String,
    pub id: String,
    /// When the attempt that was acknowledged was sent.
    pub sent: Instant,
    /// When its answer came.
    pub at: Instant,
    pub outcome: i32,
}

/// Every call the client made that was answered.
#[derive(Default)]
pub struct CallLog {
    pub acked: Vec<Ack>,
    /// Every event id ever sent (acknowledged or not).
    pub sent: HashSet<String>,
    /// Failed attempts (each retried with the same event id), by code.
    pub retries: HashMap<tonic::Code, usize>,
}

impl CallLog {
    /// Failed attempts, whatever their code.
    pub fn retried(&self) -> usize {
        self.retries.values().sum()
    }

    /// The log, once every call is done.
    pub fn finished(log: Arc<Mutex<CallLog>>) -> CallLog {
        Arc::try_unwrap(log)
            .ok()
            .expect("the calls are done")
            .into_inner()
            .expect("not poisoned")
    }
}

/// Where the client sends calls: every node address it knows (a killed
/// node's too, as a load balancer would until its health check fails; a
/// restarted node's new address is added).
pub type Targets = Arc<Mutex<Vec<String>>>;

pub fn targets(nodes: &[NodeProcess]) -> Targets {
    Arc::new(Mutex::new(nodes.iter().map(|n| n.addr.clone()).collect()))
}

/// The `i`th target, round the list.
pub fn target(targets: &Targets, i: usize) -> String {
    let t = targets.lock().expect("not poisoned");
    t[i % t.len()].clone()
}

pub fn channel(addr: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .connect_lazy()
}

/// Ingests `e` through any node, starting with target `start`, retrying
/// with the same event id (on the next node) until one acknowledges it.
pub async fn send(targets: &Targets, log: &Arc<Mutex<CallLog>>, e: pb::Event, start: usize) {
    log.lock().expect("not poisoned").sent.insert(e.id.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = start;
    loop {
        let addr = target(targets, i);
        let mut client = pb::lifecycle_client::LifecycleClient::new(channel(&addr));
        let sent = Instant::now();
        match client
            .ingest(pb::IngestRequest {
                event: Some(e.clone()),
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                assert_ne!(
                    r.outcome,
                    pb::Outcome::Rejected as i32,
                    "{} was rejected: {}",
                    e.id,
                    r.reason
                );
                log.lock().expect("not poisoned").acked.push(Ack {
                    customer: e.customer_id.clone(),
                    id: e.id.clone(),
                    sent,
                    at: Instant::now(),
                    outcome: r.outcome,
                });
                return;
            }
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Cancelled
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Unknown
                    ),
                    "{} through {addr}: {status}",
                    e.id
                );
                *log.lock()
                    .expect("not poisoned")
                    .retries
                    .entry(status.code())
                    .or_default() += 1;
                assert!(
                    Instant::now() < deadline,
                    "{} found no node to take it for 2 minutes: {status}",
                    e.id
                );
                i += 1;
            }
        }
    }
}

/// All at once, for each customer (the `n`th starting with target
/// `start + n`): the deal is won, then the payment made (a 3 s SLA starts).
pub async fn deal_and_pay(
    targets: &Targets,
    log: &Arc<Mutex<CallLog>>,
    customers: &[String],
    start: usize,
) {
    let calls = customers.iter().enumerate().map(|(n, c)| async move {
        let deal = event(&format!("deal-{c}"), "crm", "deal_won", c, "US");
        send(targets, log, deal, start + n).await;
        let pay = event(&format!("pay-{c}"), "billing", "payment_succeeded", c, "");
        send(targets, log, pay, start + n + 1).await;
    });
    futures_util::future::join_all(calls).await;
}

/// All at once, access for each customer (the `n`th through target
/// `start + n`): their escalations resolve.
pub async fn grant_access(
    targets: &Targets,
    log: &Arc<Mutex<CallLog>>,
    customers: &[String],
    start: usize,
) {
    let calls = customers.iter().enumerate().map(|(n, c)| async move {
        let e = event(&format!("acc-{c}"), "access", "access_granted", c, "");
        send(targets, log, e, start + n).await;
    });
    futures_util::future::join_all(calls).await;
}

/// What the subscriber received, across reconnects to any node.
#[derive(Default)]
pub struct Received {
    pub events: Vec<pb::EscalationEvent>,
    pub cursor: String,
    pub reconnects: usize,
}

impl Received {
    /// Where a subscriber resumes: after the last event received, or from
    /// the earliest entry.
    pub fn resume_from(&self) -> String {
        if self.cursor.is_empty() {
            "earliest".to_owned()
        } else {
            self.cursor.clone()
        }
    }

    /// An event received: the subscriber resumes after it.
    pub fn record(&mut self, e: pb::EscalationEvent) {
        self.cursor = e.cursor.clone();
        self.events.push(e);
    }
}

/// Follows the escalation stream from the earliest entry, resuming from
/// its last cursor on the next node whenever a stream breaks (at most five
/// times a second: while the database is away, nodes refuse at once).
pub async fn follow(targets: Targets, received: Arc<Mutex<Received>>) {
    let mut i = 0usize;
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    loop {
        pace.tick().await;
        let addr = target(&targets, i);
        i += 1;
        let cursor = {
            let mut r = received.lock().expect("not poisoned");
            r.reconnects += 1;
            r.resume_from()
        };
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid uri")
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        let mut client = pb::escalations_client::EscalationsClient::new(channel);
        let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_secs(3),
            client.subscribe(pb::SubscribeRequest {
                cursor,
                ..Default::default()
            }),
        )
        .await
        else {
            continue;
        };
        let mut stream = stream.into_inner();
        // A paused node sends nothing: a silent stream is dropped after a
        // while and resumed elsewhere.
        while let Ok(Ok(Some(e))) =
            tokio::time::timeout(Duration::from_secs(5), stream.message()).await
        {
            received.lock().expect("not poisoned").record(e);
        }
    }
}

pub fn received_kinds(received: &Arc<Mutex<Received>>) -> HashSet<(String, i32)> {
    received
        .lock()
        .expect("not poisoned")
        .events
        .iter()
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect()
}

/// The id of `customer`'s escalation at SLA tier `tier` (of the crash
/// model's `access_after_payment`).
pub fn escalation_id(customer: &str, tier: usize) -> String {
    format!("{customer}:access_after_payment:1:{tier}:0")
}

/// What every payment's SLA fires: the 50% tier (at 1.5 s) and the breach
/// (at 3 s).
pub fn tiers_fired(customers: &[String]) -> Vec<(String, i32)> {
    customers
        .iter()
        .flat_map(|c| {
            [
                (escalation_id(c, 0), pb::EscalationKind::TierReached as i32),
                (escalation_id(c, 1), pb::EscalationKind::Breached as i32),
            ]
        })
        .collect()
}

/// Waits (90 s at most) until the subscriber has received every one of
/// `want`.
pub async fn await_delivered(received: &Arc<Mutex<Received>>, want: &[(String, i32)]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    eventually(Duration::from_secs(95), "every tier delivered", || {
        let got = received_kinds(received);
        let missing: Vec<&(String, i32)> = want.iter().filter(|k| !got.contains(k)).collect();
        assert!(
            missing.is_empty() || std::time::Instant::now() < deadline,
            "{} of {} tiers never delivered (cursor {}), e.g. {:?}",
            missing.len(),
            want.len(),
            received.lock().expect("not poisoned").cursor,
            &missing[..missing.len().min(5)]
        );
        let done = missing.is_empty();
        async move { done.then_some(()) }
    })
    .await;
}

/// Waits (60 s at most) until the subscriber has received the resolutions
/// of `n` escalations.
pub async fn await_resolutions(received: &Arc<Mutex<Received>>, n: usize) {
    eventually(
        Duration::from_secs(60),
        "every resolution delivered",
        || {
            let got = received
                .lock()
                .expect("not poisoned")
                .events
                .iter()
                .filter(|e| e.kind == pb::EscalationKind::Resolved as i32)
                .map(|e| e.escalation_id.clone())
                .collect::<HashSet<_>>()
                .len();
            async move { (got >= n).then_some(()) }
        },
    )
    .await;
}

/// The event ids of the APPLIED entries of a customer's timeline.
pub fn applied_ids(view: &pb::CustomerView) -> Vec<&str> {
    view.timeline
        .iter()
        .filter(|t| t.outcome == pb::Outcome::Applied as i32)
        .filter_map(|t| t.summary.split('`').nth(1))
        .collect()
}

/// `customer`'s view (its whole timeline), through `addr`.
pub async fn customer_view(addr: &str, customer: &str) -> pb::CustomerView {
    let mut client = pb::lifecycle_client::LifecycleClient::new(channel(addr));
    client
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer.to_owned(),
            timeline_limit: 0,
        })
        .await
        .unwrap_or_else(|s| panic!("customer {customer}: {s}"))
        .into_inner()
}

/// Every acknowledged event is in its customer's history exactly once, and
/// nothing is there that was never sent; each of the `customers` is
/// active. Each customer is read through the next of `addrs`.
pub async fn assert_histories(log: &CallLog, addrs: &[String], customers: usize) {
    let mut by_customer: HashMap<&str, Vec<&str>> = HashMap::new();
    for a in &log.acked {
        by_customer
            .entry(a.customer.as_str())
            .or_default()
            .push(a.id.as_str());
    }
    assert_eq!(by_customer.len(), customers);
    for (n, (c, ids)) in by_customer.iter().enumerate() {
        let view = customer_view(&addrs[n % addrs.len()], c).await;
        let lifecycle = view
            .regions
            .iter()
            .find(|r| r.region == "lifecycle")
            .map(|r| r.state.as_str());
        assert_eq!(lifecycle, Some("active"), "{c}");
        let applied = applied_ids(&view);
        for id in ids {
            let k = applied.iter().filter(|a| *a == id).count();
            assert_eq!(
                k, 1,
                "acknowledged event {id} is applied {k} times in {c}'s history"
            );
        }
        for a in &applied {
            assert!(log.sent.contains(*a), "{c}'s history has {a}, never sent");
        }
    }
}

/// The shared escalation log through `addr`, replayed from the earliest
/// entry until `n` events came (each within 30 s).
pub async fn replay_log(addr: &str, n: usize) -> Vec<pb::EscalationEvent> {
    let mut escalations = pb::escalations_client::EscalationsClient::new(channel(addr));
    let mut replay = escalations
        .subscribe(pb::SubscribeRequest {
            cursor: "earliest".into(),
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let mut log = Vec::new();
    while log.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(30), replay.message())
            .await
            .unwrap_or_else(|_| panic!("the log replays: {} of {n} events came", log.len()))
            .expect("the stream is healthy")
            .expect("the stream stays open");
        log.push(e);
    }
    log
}

/// How often each (escalation id, kind) is in `log`, checked to be once.
pub fn recorded_once(log: &[pb::EscalationEvent]) -> HashMap<(String, i32), usize> {
    let mut counts: HashMap<(String, i32), usize> = HashMap::new();
    for e in log {
        *counts.entry((e.escalation_id.clone(), e.kind)).or_default() += 1;
    }
    for ((id, kind), n) in &counts {
        assert_eq!(*n, 1, "{id} (kind {kind}) is recorded {n} times");
    }
    counts
}

/// Recorded exactly once: the whole shared log, replayed through `addr`
/// from the start until `n` events; each of `want` is in it once and was
/// delivered to the subscriber. Returns the log.
pub async fn assert_recorded_once(
    addr: &str,
    n: usize,
    want: &[(String, i32)],
    received: &Arc<Mutex<Received>>,
) -> Vec<pb::EscalationEvent> {
    let recorded = replay_log(addr, n).await;
    let counts = recorded_once(&recorded);
    let delivered = received_kinds(received);
    for k in want {
        assert_eq!(counts.get(k), Some(&1), "{k:?} recorded once");
        assert!(delivered.contains(k), "{k:?} delivered to the subscriber");
    }
    recorded
}
