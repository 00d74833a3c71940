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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    Ack, CallLog, Received, Targets, applied_ids, assert_histories, assert_recorded_once,
    await_delivered, await_resolutions, channel, customer_view, deal_and_pay, follow, grant_access,
    recorded_once, replay_log, send, start_nodes, targets, tiers_fired,
};
use common::{NodeProcess, event, eventually};
use handoff::api::pb;
use handoff::testkit::postgres::LocalPostgres;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ROUNDS: usize = 12;
const PER_ROUND: usize = 5;

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

/// The customers of a round of load.
fn round_of(round: usize) -> Vec<String> {
    (0..PER_ROUND).map(|i| customer(round, i)).collect()
}

/// Starts a node per id on the database at `url` and waits (30 s at most)
/// until they share the shards.
async fn start_cluster(pg: &LocalPostgres, prefix: &str, ids: &[&str]) -> Vec<NodeProcess> {
    let nodes = start_nodes(prefix, &pg.url("handoff"), ids);
    eventually(
        Duration::from_secs(30),
        &format!("{} nodes sharing the shards", ids.len()),
        || {
            let n = owners(pg);
            async move { (n == ids.len()).then_some(()) }
        },
    )
    .await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_pauses_and_restarts_lose_nothing_and_escalate_once() {
    let pg = LocalPostgres::start().expect("starts PostgreSQL");
    let mut nodes = start_cluster(&pg, "cluster", &["node1", "node2", "node3"]).await;
    let targets: Targets = targets(&nodes);
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
        deal_and_pay(&targets, &log, &round_of(round), round).await;
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
    let all: Vec<String> = (0..ROUNDS).flat_map(round_of).collect();
    let want_fired = tiers_fired(&all);
    await_delivered(&received, &want_fired).await;
    // Access for everyone: each escalation resolves.
    for r in 0..ROUNDS {
        grant_access(&targets, &log, &round_of(r), r).await;
    }
    await_resolutions(&received, 2 * customers).await;
    follower.abort();

    // Every acknowledged event is in its customer's history exactly once,
    // and nothing is there that was never sent.
    let log = CallLog::finished(log);
    assert_histories(&log, &[nodes[0].addr.clone()], customers).await;

    // Recorded exactly once: the whole shared log, replayed from the start.
    let recorded =
        assert_recorded_once(&nodes[2].addr, 4 * customers, &want_fired, &received).await;
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
        log.retried(),
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
    let nodes = start_cluster(&pg, "outage", &["o1", "o2"]).await;
    let targets: Targets = targets(&nodes);
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
    // Cut off from the database, a node tells load balancers so.
    assert_eq!(
        health(&nodes[0].addr).await,
        ServingStatus::NotServing as i32
    );
    pg.start_again().expect("PostgreSQL starts again");
    let back_at = Instant::now();
    tokio::time::timeout(Duration::from_secs(90), load)
        .await
        .expect("the load completes once the database is back")
        .expect("the load task");
    let recovered = back_at.elapsed();
    eventually(Duration::from_secs(30), "the nodes healthy again", || {
        let addr = nodes[0].addr.clone();
        async move { (health(&addr).await == ServingStatus::Serving as i32).then_some(()) }
    })
    .await;

    // Nothing acknowledged is lost, no event is applied twice.
    let log = CallLog::finished(log);
    assert_eq!(log.acked.len(), 40);
    for Ack {
        customer: c, id, ..
    } in &log.acked
    {
        let view = customer_view(&nodes[1].addr, c).await;
        let n = applied_ids(&view).iter().filter(|a| *a == id).count();
        assert_eq!(n, 1, "{id} is applied {n} times in {c}'s history");
    }
    // SLA watching resumed: every paid customer's breach is recorded once,
    // those due during the outage included (every tier fires after it).
    recorded_once(&replay_log(&nodes[0].addr, 40).await);
    eprintln!(
        "outage: 30 s down; the load completed {:.1} s after the database came back; {} retried calls",
        recovered.as_secs_f64(),
        log.retried()
    );
}

/// The gRPC health status of the node at `addr` (the whole server, "").
async fn health(addr: &str) -> i32 {
    let mut client = HealthClient::new(channel(addr));
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("the health service answers")
        .into_inner()
        .status
}
