//! The cluster as its users meet it: three real node processes on one real
//! PostgreSQL (started by the test), a client that logs every call it made
//! and every answer, and a nemesis that SIGKILLs one node, SIGSTOPs another
//! past its lease, resumes it and restarts the first, all during the load.
//!
//! Then: every acknowledged event is in its customer's history exactly
//! once and nothing appears that was never sent; every expected escalation
//! is recorded exactly once in the shared log and was delivered to a
//! subscriber that resumed by cursor on whichever node answered; every
//! tier fired within 5 s of its due time, failovers included; and the
//! paused node, once resumed, stopped serving the shards it had lost
//! (its writes were fenced by the database, whatever its clock said).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{NodeProcess, event, eventually, fresh_dir, root};
use handoff::api::pb;
use handoff::testkit::postgres::LocalPostgres;
use tonic::transport::{Channel, Endpoint};

const ROUNDS: usize = 12;
const PER_ROUND: usize = 5;

/// Every call the client made that was answered, by event id.
#[derive(Default)]
struct CallLog {
    /// `(customer, event id)` of every acknowledged ingest.
    acked: Vec<(String, String)>,
    /// Every event id ever sent (acknowledged or not).
    sent: HashSet<String>,
    /// Calls that failed and were retried (same event id).
    retries: usize,
}

/// Where the client sends calls: every node address it knows (a killed
/// node's too, as a load balancer would until its health check fails).
type Targets = Arc<Mutex<Vec<String>>>;

fn channel(addr: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(4))
        .connect_lazy()
}

/// Ingests `e` through any node, retrying with the same event id until a
/// node answers.
async fn send(targets: &Targets, log: &Arc<Mutex<CallLog>>, e: pb::Event, start: usize) {
    log.lock().expect("not poisoned").sent.insert(e.id.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = start;
    loop {
        let addr = {
            let t = targets.lock().expect("not poisoned");
            t[i % t.len()].clone()
        };
        let mut client = pb::lifecycle_client::LifecycleClient::new(channel(&addr));
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
                log.lock()
                    .expect("not poisoned")
                    .acked
                    .push((e.customer_id.clone(), e.id.clone()));
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
                log.lock().expect("not poisoned").retries += 1;
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

/// What the subscriber received, across reconnects to any node.
#[derive(Default)]
struct Received {
    events: Vec<pb::EscalationEvent>,
    cursor: String,
    reconnects: usize,
}

/// Follows the escalation stream from the earliest entry, resuming from
/// its last cursor on the next node whenever a stream breaks.
async fn follow(targets: Targets, received: Arc<Mutex<Received>>) {
    let mut i = 0usize;
    loop {
        let addr = {
            let t = targets.lock().expect("not poisoned");
            t[i % t.len()].clone()
        };
        i += 1;
        let cursor = {
            let mut r = received.lock().expect("not poisoned");
            r.reconnects += 1;
            if r.cursor.is_empty() {
                "earliest".to_owned()
            } else {
                r.cursor.clone()
            }
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
            let mut r = received.lock().expect("not poisoned");
            r.cursor = e.cursor.clone();
            r.events.push(e);
        }
    }
}

fn received_kinds(received: &Arc<Mutex<Received>>) -> HashSet<(String, i32)> {
    received
        .lock()
        .expect("not poisoned")
        .events
        .iter()
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect()
}

/// Shards whose lease `node` holds now, by the database.
fn leases_of(pg: &LocalPostgres, node: &str) -> usize {
    pg.psql(
        "handoff",
        &format!("SELECT count(*) FROM shards WHERE owner = '{node}' AND lease_until > now()"),
    )
    .expect("reads the shards")
    .parse()
    .expect("a count")
}

fn owners(pg: &LocalPostgres) -> usize {
    pg.psql(
        "handoff",
        "SELECT count(DISTINCT owner) FROM shards WHERE lease_until > now()",
    )
    .expect("reads the shards")
    .parse()
    .expect("a count")
}

fn customer(round: usize, i: usize) -> String {
    format!("cl-{round:02}-{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_pauses_and_restarts_lose_nothing_and_escalate_once() {
    let pg = LocalPostgres::start().expect("starts PostgreSQL");
    let url = pg.url("handoff");
    let model = root().join("tests/models/crash.toml");
    let start = |id: &str| {
        NodeProcess::start_capturing(
            &fresh_dir(&format!("cluster-{id}")),
            &model,
            &["--store", &url, "--node-id", id],
            "warn",
        )
    };
    let mut nodes = [start("node1"), start("node2"), start("node3")];
    eventually(
        Duration::from_secs(30),
        "three nodes sharing the shards",
        || {
            let n = owners(&pg);
            async move { (n == 3).then_some(()) }
        },
    )
    .await;
    let targets: Targets = Arc::new(Mutex::new(nodes.iter().map(|n| n.addr.clone()).collect()));
    let received = Arc::new(Mutex::new(Received::default()));
    let follower = tokio::spawn(follow(targets.clone(), received.clone()));
    let log = Arc::new(Mutex::new(CallLog::default()));

    for round in 0..ROUNDS {
        match round {
            3 => nodes[1].kill9(),
            5 => nodes[2].signal("STOP"),
            7 => {
                // Node 3 is paused past its lease: the others take its shards.
                eventually(Duration::from_secs(30), "node3's leases to move", || {
                    let n = leases_of(&pg, "node3");
                    async move { (n == 0).then_some(()) }
                })
                .await;
                nodes[2].signal("CONT");
            }
            9 => {
                nodes[1].restart();
                targets
                    .lock()
                    .expect("not poisoned")
                    .push(nodes[1].addr.clone());
            }
            _ => {}
        }
        let calls = (0..PER_ROUND).map(|i| {
            let (targets, log) = (targets.clone(), log.clone());
            async move {
                let c = customer(round, i);
                let deal = event(&format!("deal-{c}"), "crm", "deal_won", &c, "US");
                send(&targets, &log, deal, round + i).await;
                let pay = event(&format!("pay-{c}"), "billing", "payment_succeeded", &c, "");
                send(&targets, &log, pay, round + i + 1).await;
            }
        });
        futures_util::future::join_all(calls).await;
    }
    let customers = ROUNDS * PER_ROUND;

    // The resumed node saw that it had lost its shards and stopped them.
    eventually(
        Duration::from_secs(30),
        "node3 to stop its lost shards",
        || {
            let text = nodes[2].log();
            async move {
                (text.contains("stopping every shard before the leases end")
                    || text.contains("lease lost")
                    || text.contains("the shard moved to another node"))
                .then_some(())
            }
        },
    )
    .await;

    // Every payment's SLA tiers fire (50% at 1.5 s, the breach at 3 s).
    let want_fired: Vec<(String, i32)> = (0..ROUNDS)
        .flat_map(|r| (0..PER_ROUND).map(move |i| customer(r, i)))
        .flat_map(|c| {
            [
                (
                    format!("{c}:access_after_payment:1:0:0"),
                    pb::EscalationKind::TierReached as i32,
                ),
                (
                    format!("{c}:access_after_payment:1:1:0"),
                    pb::EscalationKind::Breached as i32,
                ),
            ]
        })
        .collect();
    eventually(Duration::from_secs(90), "every tier delivered", || {
        let got = received_kinds(&received);
        let missing = want_fired.iter().filter(|k| !got.contains(k)).count();
        async move { (missing == 0).then_some(()) }
    })
    .await;
    // Access for everyone: each escalation resolves.
    for r in 0..ROUNDS {
        let calls = (0..PER_ROUND).map(|i| {
            let (targets, log) = (targets.clone(), log.clone());
            async move {
                let c = customer(r, i);
                let e = event(&format!("acc-{c}"), "access", "access_granted", &c, "");
                send(&targets, &log, e, r + i).await;
            }
        });
        futures_util::future::join_all(calls).await;
    }
    eventually(
        Duration::from_secs(60),
        "every resolution delivered",
        || {
            let n = received
                .lock()
                .expect("not poisoned")
                .events
                .iter()
                .filter(|e| e.kind == pb::EscalationKind::Resolved as i32)
                .map(|e| e.escalation_id.clone())
                .collect::<HashSet<_>>()
                .len();
            async move { (n >= 2 * customers).then_some(()) }
        },
    )
    .await;
    follower.abort();

    // Every acknowledged event is in its customer's history exactly once,
    // and nothing is there that was never sent.
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("the calls are done")
        .into_inner()
        .expect("not poisoned");
    let mut client = pb::lifecycle_client::LifecycleClient::new(channel(&nodes[0].addr));
    let by_customer: HashMap<&str, Vec<&str>> =
        log.acked.iter().fold(HashMap::new(), |mut m, (c, id)| {
            m.entry(c.as_str()).or_default().push(id.as_str());
            m
        });
    assert_eq!(by_customer.len(), customers);
    for (c, ids) in &by_customer {
        let view = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: c.to_string(),
                timeline_limit: 0,
            })
            .await
            .unwrap_or_else(|s| panic!("customer {c}: {s}"))
            .into_inner();
        let lifecycle = view
            .regions
            .iter()
            .find(|r| r.region == "lifecycle")
            .map(|r| r.state.as_str());
        assert_eq!(lifecycle, Some("active"), "{c}");
        let applied: Vec<&str> = view
            .timeline
            .iter()
            .filter(|t| t.outcome == pb::Outcome::Applied as i32)
            .filter_map(|t| t.summary.split('`').nth(1))
            .collect();
        for id in ids {
            let n = applied.iter().filter(|a| *a == id).count();
            assert_eq!(
                n, 1,
                "acknowledged event {id} is applied {n} times in {c}'s history"
            );
        }
        for a in &applied {
            assert!(log.sent.contains(*a), "{c}'s history has {a}, never sent");
        }
    }

    // Recorded exactly once: the whole shared log, replayed from the start.
    let mut escalations = pb::escalations_client::EscalationsClient::new(channel(&nodes[2].addr));
    let mut replay = escalations
        .subscribe(pb::SubscribeRequest {
            cursor: "earliest".into(),
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let mut recorded = Vec::new();
    while recorded.len() < 4 * customers {
        let e = tokio::time::timeout(Duration::from_secs(30), replay.message())
            .await
            .expect("the log replays")
            .expect("the stream is healthy")
            .expect("the stream stays open");
        recorded.push(e);
    }
    let mut counts: HashMap<(String, i32), usize> = HashMap::new();
    for e in &recorded {
        *counts.entry((e.escalation_id.clone(), e.kind)).or_default() += 1;
    }
    for ((id, kind), n) in &counts {
        assert_eq!(*n, 1, "{id} (kind {kind}) is recorded {n} times");
    }
    let delivered = received_kinds(&received);
    for k in &want_fired {
        assert_eq!(counts.get(k), Some(&1), "{k:?} recorded once");
        assert!(delivered.contains(k), "{k:?} delivered to the subscriber");
    }
    // On time, failovers included: each tier within 5 s of its due time.
    for e in recorded
        .iter()
        .filter(|e| e.kind != pb::EscalationKind::Resolved as i32)
    {
        let (due, fired) = (
            e.due.expect("a due time"),
            e.fired_at.expect("a firing time"),
        );
        let late_ms =
            (fired.seconds - due.seconds) * 1000 + i64::from(fired.nanos - due.nanos) / 1_000_000;
        assert!(
            late_ms <= 5_000,
            "{} fired {late_ms} ms after it was due",
            e.escalation_id
        );
    }
    let (retries, reconnects) = (
        log.retries,
        received.lock().expect("not poisoned").reconnects,
    );
    eprintln!(
        "cluster: {} events acknowledged, {retries} retried calls, {} escalations recorded, \
         subscriber reconnected {reconnects} times",
        log.acked.len(),
        recorded.len()
    );
}

/// The database gone for 30 s under load: calls answer UNAVAILABLE (with
/// what to do) instead of hanging, nothing acknowledged is lost, and the
/// cluster serves again by itself once the database is back: its nodes
/// reconnect, take the shards again under new epochs, and fire the tiers
/// that came due during the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_unavailable_and_the_cluster_recovers_by_itself() {
    let mut pg = LocalPostgres::start().expect("starts PostgreSQL");
    let url = pg.url("handoff");
    let model = root().join("tests/models/crash.toml");
    let start = |id: &str| {
        NodeProcess::start_capturing(
            &fresh_dir(&format!("outage-{id}")),
            &model,
            &["--store", &url, "--node-id", id],
            "warn",
        )
    };
    let nodes = [start("o1"), start("o2")];
    eventually(
        Duration::from_secs(30),
        "two nodes sharing the shards",
        || {
            let n = owners(&pg);
            async move { (n == 2).then_some(()) }
        },
    )
    .await;
    let targets: Targets = Arc::new(Mutex::new(nodes.iter().map(|n| n.addr.clone()).collect()));
    let log = Arc::new(Mutex::new(CallLog::default()));
    let pay = |c: &str| event(&format!("pay-{c}"), "billing", "payment_succeeded", c, "");
    let deal = |c: &str| event(&format!("deal-{c}"), "crm", "deal_won", c, "US");
    for i in 0..10 {
        let c = format!("before-{i}");
        send(&targets, &log, deal(&c), i).await;
        send(&targets, &log, pay(&c), i).await;
    }

    pg.stop().expect("stops PostgreSQL");
    let down_at = Instant::now();
    // A call during the outage is answered, UNAVAILABLE, and says why.
    let mut client = pb::lifecycle_client::LifecycleClient::new(channel(&nodes[0].addr));
    let status = client
        .ingest(pb::IngestRequest {
            event: Some(deal("during-0")),
        })
        .await
        .expect_err("no database, no acknowledgement");
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        ),
        "{status}"
    );
    // Load goes on against the outage: every call is retried (same event
    // id) until it is acknowledged, which can only be after the database
    // is back.
    let load = {
        let (targets, log) = (targets.clone(), log.clone());
        tokio::spawn(async move {
            let calls = (0..10).map(|i| {
                let (targets, log) = (targets.clone(), log.clone());
                async move {
                    let c = format!("during-{i}");
                    send(&targets, &log, deal(&c), i).await;
                    send(&targets, &log, pay(&c), i).await;
                }
            });
            futures_util::future::join_all(calls).await;
        })
    };
    eventually(Duration::from_secs(60), "30 s of outage", || {
        let (done, acked) = (
            down_at.elapsed() >= Duration::from_secs(30),
            log.lock().expect("not poisoned").acked.len(),
        );
        assert_eq!(
            acked, 20,
            "nothing is acknowledged while the database is down"
        );
        async move { done.then_some(()) }
    })
    .await;
    pg.start_again().expect("PostgreSQL starts again");
    let back_at = Instant::now();
    tokio::time::timeout(Duration::from_secs(90), load)
        .await
        .expect("the load completes once the database is back")
        .expect("the load task");
    let recovered = back_at.elapsed();

    // Nothing acknowledged is lost, no event is applied twice.
    let mut client = pb::lifecycle_client::LifecycleClient::new(channel(&nodes[1].addr));
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("the calls are done")
        .into_inner()
        .expect("not poisoned");
    assert_eq!(log.acked.len(), 40);
    for (c, id) in &log.acked {
        let view = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: c.clone(),
                timeline_limit: 0,
            })
            .await
            .unwrap_or_else(|s| panic!("customer {c}: {s}"))
            .into_inner();
        let n = view
            .timeline
            .iter()
            .filter(|t| t.outcome == pb::Outcome::Applied as i32)
            .filter(|t| t.summary.split('`').nth(1) == Some(id.as_str()))
            .count();
        assert_eq!(n, 1, "{id} is applied {n} times in {c}'s history");
    }
    // SLA watching resumed: every paid customer's breach is recorded once,
    // those due during the outage included.
    let mut escalations = pb::escalations_client::EscalationsClient::new(channel(&nodes[0].addr));
    let mut replay = escalations
        .subscribe(pb::SubscribeRequest {
            cursor: "earliest".into(),
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let mut counts: HashMap<String, usize> = HashMap::new();
    while counts.len() < 40 {
        let e = tokio::time::timeout(Duration::from_secs(30), replay.message())
            .await
            .expect("every tier fires after the outage")
            .expect("the stream is healthy")
            .expect("the stream stays open");
        *counts
            .entry(format!("{}/{}", e.escalation_id, e.kind))
            .or_default() += 1;
    }
    for (k, n) in &counts {
        assert_eq!(*n, 1, "{k} recorded {n} times");
    }
    eprintln!(
        "outage: 30 s down; the load completed {:.1} s after the database came back; {} retried calls",
        recovered.as_secs_f64(),
        log.retries
    );
}
