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
    Node::open(
        config,
        saas(),
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    )
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
    let node = Node::open(
        config,
        saas(),
        Arc::new(MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .await
    .expect("the node opens");
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
