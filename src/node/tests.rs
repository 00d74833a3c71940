//! The node in process, on the memory store: passivation and the cap on
//! active actors keep memory bounded while every customer stays correct.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::SystemClock;
use crate::engine::Outcome;
use crate::engine::model::{Duration as ModelDuration, load};
use crate::store::MemoryStore;

fn saas() -> Arc<Model> {
    let text = include_str!("../../examples/saas.toml");
    Arc::new(load("saas.toml", text).expect("the reference model loads"))
}

fn event(id: &str, source: &str, ty: &str, customer: &str, market: &str) -> Event {
    Event {
        id: id.into(),
        source: source.into(),
        event_type: ty.into(),
        customer: customer.into(),
        market: market.into(),
        occurred_at: Timestamp(0),
        attributes: Default::default(),
    }
}

async fn node(config: NodeConfig) -> Node {
    node_on(config, Arc::new(MemoryStore::new()), Arc::new(SystemClock)).await
}

/// A node of the reference model on `store`, reading the time from `clock`.
async fn node_on(config: NodeConfig, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Node {
    Node::open(config, saas(), store, clock)
        .await
        .expect("the node opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_actor_cap_holds_and_passivated_customers_come_back_intact() {
    let node = node(NodeConfig {
        shards: 2,
        max_active_actors: 10,
        idle_timeout: ModelDuration::from_secs(3600),
        ..NodeConfig::default()
    })
    .await;
    for i in 0..200 {
        let c = format!("c{i}");
        let r = node
            .ingest(event(&format!("d{i}"), "crm", "deal_won", &c, "US"), false)
            .await;
        assert_eq!(r.expect("ingests").outcome, Outcome::Applied);
    }
    let stats = node.actor_stats().await;
    assert!(stats.active <= 10, "at most the cap is active: {stats:?}");
    // Every customer, passivated or not, continues where it was.
    for i in 0..200 {
        let c = format!("c{i}");
        let r = node
            .ingest(
                event(&format!("p{i}"), "billing", "payment_succeeded", &c, ""),
                false,
            )
            .await
            .expect("ingests");
        assert_eq!(r.outcome, Outcome::Applied, "{c}: {r:?}");
        let lifecycle = r
            .states
            .iter()
            .find(|(k, _)| k == "lifecycle")
            .map(|(_, v)| v.as_str());
        assert_eq!(lifecycle, Some("paid"), "{c}");
        // A redelivery of its first event is still a duplicate.
        let again = node
            .ingest(event(&format!("d{i}"), "crm", "deal_won", &c, ""), false)
            .await
            .expect("ingests");
        assert_eq!(again.outcome, Outcome::Duplicate, "{c}");
    }
    let stats = node.actor_stats().await;
    assert!(stats.active <= 10, "{stats:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actors_are_passivated() {
    let node = node(NodeConfig {
        shards: 2,
        idle_timeout: ModelDuration(200_000),
        ..NodeConfig::default()
    })
    .await;
    for i in 0..20 {
        let c = format!("idle{i}");
        node.ingest(event("l1", "crm", "lead_created", &c, "US"), false)
            .await
            .expect("ingests");
    }
    assert!(node.actor_stats().await.active > 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let s = node.actor_stats().await;
        if s.active == 0 && s.draining == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "idle actors stay active: {s:?}"
        );
    }
    // And they answer again, from the store.
    let v = node
        .customer("idle3", 0)
        .await
        .expect("the customer is there");
    assert_eq!(v.regions[0].state, "lead");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_customers_and_bad_ids_get_clear_errors() {
    let node = node(NodeConfig::default()).await;
    let e = node.customer("ghost", 0).await.expect_err("unknown");
    assert!(matches!(e, NodeError::NotFound(_)), "{e:?}");
    let e = node
        .ingest(event("", "crm", "deal_won", "c1", "US"), false)
        .await
        .expect_err("malformed");
    assert!(
        matches!(e, NodeError::Invalid(_, ref m) if m.contains("id is empty")),
        "{e:?}"
    );
    let e = node
        .acknowledge("nonsense", "billing", "")
        .await
        .expect_err("bad id");
    assert!(matches!(e, NodeError::Invalid(..)), "{e:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_forgotten_after_the_retention_window() {
    use crate::clock::ManualClock;
    let clock = ManualClock::new(Timestamp(1_767_225_600_000_000));
    let config = NodeConfig {
        shards: 1,
        max_active_actors: 1,
        idempotency_retention: ModelDuration::from_secs(86_400),
        ..NodeConfig::default()
    };
    let node = node_on(
        config,
        Arc::new(MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .await;
    let deal = || event("d1", "crm", "deal_won", "c1", "US");
    assert_eq!(
        node.ingest(deal(), false).await.expect("ok").outcome,
        Outcome::Applied
    );
    assert_eq!(
        node.ingest(deal(), false).await.expect("ok").outcome,
        Outcome::Duplicate
    );
    // Within the window, even after passivation (the cap is one actor).
    node.ingest(event("x", "crm", "lead_created", "other", "US"), false)
        .await
        .expect("ok");
    clock.set(Timestamp(clock.now().0 + 3_600_000_000));
    assert_eq!(
        node.ingest(deal(), false).await.expect("ok").outcome,
        Outcome::Duplicate
    );
    // Past it, once the customer is loaded again, the key is gone.
    node.ingest(event("y", "crm", "lead_created", "other", "US"), false)
        .await
        .expect("ok");
    clock.set(Timestamp(clock.now().0 + 2 * 86_400_000_000));
    let again = node.ingest(deal(), false).await.expect("ok");
    assert_ne!(again.outcome, Outcome::Duplicate, "{again:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_the_log_is_refused() {
    let node = node(NodeConfig {
        shards: 2,
        ..NodeConfig::default()
    })
    .await;
    let e = node
        .subscribe(EscalationFilter::default(), "h1-5-0")
        .expect_err("ahead of an empty log");
    assert!(
        matches!(e, NodeError::Invalid(_, ref m) if m.contains("ahead")),
        "{e:?}"
    );
    assert!(
        node.subscribe(EscalationFilter::default(), "h1-0-0")
            .is_ok()
    );
    node.shutdown().await;
}

/// The next event of a stream, waiting at most ten seconds for it.
async fn next_event(rx: &mut escalations::EscalationReceiver) -> StreamedEscalation {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an escalation arrives within 10 s")
        .expect("the stream is open")
        .expect("the log reads")
}

/// Opens a first_reply ticket that is five hours old: the SLA (4 h in the
/// US) attaches past its only tier, so exactly one escalation fires now.
async fn escalate_now(node: &Node, customer: &str) {
    let mut e = event(
        &format!("t-{customer}"),
        "support",
        "ticket_opened",
        customer,
        "US",
    );
    e.occurred_at = node.now() - ModelDuration::from_secs(5 * 3600);
    let r = node.ingest(e, true).await.expect("ingests");
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escalation_log_is_pruned_past_retention_and_gaps_are_reported() {
    use crate::clock::ManualClock;
    const DAY: i64 = 86_400;
    let t0 = Timestamp(1_767_225_600_000_000);
    let clock = ManualClock::new(t0);
    let at_day = |d: i64| clock.set(t0 + ModelDuration::from_secs(d * DAY));
    let store = Arc::new(MemoryStore::new());
    let node = node_on(
        NodeConfig {
            shards: 1,
            escalation_retention: ModelDuration::from_secs(30 * DAY),
            ..NodeConfig::default()
        },
        store.clone(),
        Arc::new(clock.clone()),
    )
    .await;
    let log = || -> Vec<u64> {
        store
            .escalations(0, None, 100)
            .expect("reads")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    };
    let subscribe = |cursor: &str| {
        node.subscribe(EscalationFilter::default(), cursor)
            .expect("subscribes")
    };

    // Day 0: three escalations; day 10: a fourth.
    for c in ["c1", "c2", "c3"] {
        escalate_now(&node, c).await;
    }
    at_day(10);
    escalate_now(&node, "c4").await;
    assert_eq!(log(), vec![1, 2, 3, 4]);
    let (_, mut rx) = subscribe("earliest");
    let first = next_event(&mut rx).await;
    assert_eq!((first.cursor.as_str(), first.skipped), ("h1-1", 0));
    let old_cursor = first.cursor;

    // Day 31: the first three are past retention; the fourth is not.
    at_day(31);
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!(report.pruned, 3, "{report:?}");
    assert_eq!(report.retained, 1, "{report:?}");
    assert_eq!(
        report.oldest_fired_at,
        Some(t0 + ModelDuration::from_secs(10 * DAY))
    );
    assert_eq!(log(), vec![4]);

    // `earliest` starts at the oldest retained, with no gap to report.
    let (start, mut rx) = subscribe("earliest");
    assert_eq!(start.encode(), "h1-3");
    let e = next_event(&mut rx).await;
    assert_eq!(
        (e.entry.customer.as_str(), e.cursor.as_str()),
        ("c4", "h1-4")
    );
    assert_eq!(e.skipped, 0);
    // An old cursor resumes there too, and the first event says how many
    // entries it missed; the next ones say nothing.
    let (_, mut rx) = subscribe(&old_cursor);
    let e = next_event(&mut rx).await;
    assert_eq!((e.entry.customer.as_str(), e.skipped), ("c4", 2));
    let (_, mut rx) = subscribe("h1-0");
    let e = next_event(&mut rx).await;
    assert_eq!((e.cursor.as_str(), e.skipped), ("h1-4", 3));
    escalate_now(&node, "c5").await;
    let e = next_event(&mut rx).await;
    assert_eq!((e.cursor.as_str(), e.skipped), ("h1-5", 0));
    // A cursor just before the oldest retained lost nothing.
    let (_, mut rx) = subscribe("h1-3");
    assert_eq!(next_event(&mut rx).await.skipped, 0);

    // Day 100: everything is old, but the newest entry stays, and the
    // numbering goes on after it.
    at_day(100);
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!((report.pruned, report.retained), (1, 1), "{report:?}");
    assert_eq!(log(), vec![5]);
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!((report.pruned, report.retained), (0, 1), "{report:?}");
    let (_, mut live) = subscribe("");
    escalate_now(&node, "c6").await;
    let e = next_event(&mut live).await;
    assert_eq!(
        (e.entry.customer.as_str(), e.cursor.as_str()),
        ("c6", "h1-6")
    );
    assert_eq!(log(), vec![5, 6]);
    node.prune_escalation_log().await.expect("prunes");
    assert_eq!(log(), vec![6]);
    let (_, mut rx) = subscribe(&old_cursor);
    let e = next_event(&mut rx).await;
    assert_eq!((e.entry.customer.as_str(), e.skipped), ("c6", 4));

    // Across a restart too: the journal numbers on from the kept newest.
    at_day(200);
    node.prune_escalation_log().await.expect("prunes");
    assert_eq!(log(), vec![6]);
    node.shutdown().await;
    drop(node);
    let node = node_on(
        NodeConfig {
            shards: 1,
            ..NodeConfig::default()
        },
        store.clone(),
        Arc::new(clock.clone()),
    )
    .await;
    let (_, mut live) = node
        .subscribe(EscalationFilter::default(), "")
        .expect("subscribes");
    escalate_now(&node, "c7").await;
    assert_eq!(next_event(&mut live).await.cursor, "h1-7");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_decided_before_fact_retention_are_pruned_and_newer_ones_kept() {
    use crate::clock::ManualClock;
    const DAY: i64 = 86_400;
    let t0 = Timestamp(1_767_225_600_000_000);
    let clock = ManualClock::new(t0);
    let at_day = |d: i64| clock.set(t0 + ModelDuration::from_secs(d * DAY));
    let store = Arc::new(MemoryStore::new());
    let node = node_on(
        NodeConfig {
            shards: 2,
            fact_retention: ModelDuration::from_secs(100 * DAY),
            ..NodeConfig::default()
        },
        store.clone(),
        Arc::new(clock.clone()),
    )
    .await;
    let last = |customer: &str| {
        store
            .last_fact_seq(node.shard_of(customer), customer)
            .expect("reads")
    };
    let ingest = |id: &str, source: &str, ty: &str, customer: &str| {
        node.ingest(event(id, source, ty, customer, "US"), false)
    };

    // Leads arm no SLA, so no timer adds facts behind the test's back.
    // Day 0: c1 is created; day 50: c1 gets an event it ignores (recorded
    // all the same) and c2 is created.
    ingest("l1", "crm", "lead_created", "c1")
        .await
        .expect("ingests");
    let day0 = last("c1").expect("c1 has facts");
    at_day(50);
    ingest("h1", "product", "health_dropped", "c1")
        .await
        .expect("ingests");
    ingest("l2", "crm", "lead_created", "c2")
        .await
        .expect("ingests");
    let (c1, c2) = (last("c1").expect("facts"), last("c2").expect("facts"));
    assert!(c1 > day0, "the second event was recorded");

    // Day 120: c1's facts of day 0 are past retention, the rest are not.
    at_day(120);
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!(report.facts_pruned, day0, "{report:?}");
    assert_eq!((last("c1"), last("c2")), (Some(c1), Some(c2)));
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!(report.facts_pruned, 0, "{report:?}");

    // Day 151: everything is old. The customers are intact (their records
    // are not history), and c1's history goes on where it was.
    at_day(151);
    let report = node.prune_escalation_log().await.expect("prunes");
    assert_eq!(report.facts_pruned, (c1 - day0) + c2, "{report:?}");
    assert_eq!((last("c1"), last("c2")), (None, None));
    let v = node.customer("c1", 0).await.expect("c1 is still there");
    assert_eq!(v.regions[0].state, "lead");
    ingest("h2", "product", "health_dropped", "c1")
        .await
        .expect("ingests");
    assert!(last("c1").expect("a new fact") > c1, "numbered on");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_shed_once_max_queued_events_are_queued() {
    let node = node(NodeConfig {
        shards: 2,
        max_queued_events: 10,
        ..NodeConfig::default()
    })
    .await;
    let deal = |i: usize| {
        (
            event(&format!("d{i}"), "crm", "deal_won", &format!("c{i}"), "US"),
            false,
        )
    };
    // A batch larger than the queue can ever hold is refused, saying so.
    let too_big = node.ingest_batch((0..11).map(deal).collect()).await;
    let Err(NodeError::Exhausted(m)) = too_big else {
        panic!("expected Exhausted, got {too_big:?}");
    };
    assert!(
        m.contains("max_queued_events = 10") && m.contains("smaller batches"),
        "{m}"
    );
    // With 8 of 10 queued, a batch of 3 is shed whole, and so is a lone
    // event once all 10 are taken; nothing of them is ingested.
    let held = node.admit(8).expect("room for 8");
    let shed = node.ingest_batch((0..3).map(deal).collect()).await;
    assert!(
        matches!(shed, Err(NodeError::Exhausted(ref m)) if m.contains("retry with backoff")),
        "{shed:?}"
    );
    let two = node.admit(2).expect("room for 2 more");
    let (e, set) = deal(20);
    let lone = node.ingest(e, set).await;
    assert!(matches!(lone, Err(NodeError::Exhausted(_))), "{lone:?}");
    assert!(matches!(
        node.customer("c0", 0).await,
        Err(NodeError::NotFound(_))
    ));
    // Once answered, the queue has room again.
    drop((held, two));
    let results = node
        .ingest_batch((0..10).map(deal).collect())
        .await
        .expect("admitted whole");
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.outcome == Outcome::Applied))
    );
    let (e, set) = deal(20);
    assert!(node.ingest(e, set).await.is_ok());
}

/// An event proposed to the journal gives its place in the dispatch window
/// back before it is durable: while the store holds every commit, more
/// events than the window are decided and proposed, none answered, and
/// the whole window is free again; once the store lets go, all apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_waiting_for_their_commit_leave_the_dispatch_window() {
    let store = Arc::new(crate::journal::tests::TestStore::default());
    let node = node_on(
        NodeConfig {
            shards: 2,
            ..NodeConfig::default()
        },
        store.clone(),
        Arc::new(SystemClock),
    )
    .await;
    *store.hold.lock().expect("not poisoned") = true;
    let window = dispatch_window(false);
    let n = window + 100;
    let batch = (0..n)
        .map(|i| {
            let id = format!("d{i}");
            (event(&id, "crm", "deal_won", &format!("c{i}"), "US"), false)
        })
        .collect();
    let mut ingest = std::pin::pin!(node.ingest_batch(batch));
    // Queued behind the batch's events (the semaphore is fair): granted
    // only once every one of them has been proposed.
    let whole_window = tokio::time::timeout(
        Duration::from_secs(60),
        node.dispatch.acquire_many(window as u32),
    );
    let freed = tokio::select! {
        biased;
        answered = &mut ingest => Err(format!("answered while the store holds every commit: {answered:?}")),
        window = whole_window => match window {
            Ok(permits) => Ok(permits.expect("the semaphore is open")),
            Err(_) => Err("the window did not free up while the commits were held".to_owned()),
        },
    };
    // Let go before judging: a held commit would keep the journal (and
    // the test) from ever stopping.
    store.release();
    drop(freed.unwrap_or_else(|why| panic!("{why}")));
    let results = ingest.await.expect("admitted whole");
    assert_eq!(results.len(), n);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.outcome == Outcome::Applied)),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    node.shutdown().await;
}

/// The window follows the runtime's worker threads (16 each, at least
/// 32), and stays 512 against a store whose reads are round trips.
#[test]
fn the_dispatch_window_follows_the_workers_and_the_store() {
    let on = |workers: usize| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .expect("a runtime")
            .block_on(async { (dispatch_window(false), dispatch_window(true)) })
    };
    assert_eq!(on(1), (MIN_DISPATCH_WINDOW, ROUND_TRIP_DISPATCH_WINDOW));
    assert_eq!(on(2), (32, 512));
    assert_eq!(on(4), (64, 512));
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(async { dispatch_window(false) });
    assert_eq!(current, MIN_DISPATCH_WINDOW);
}
