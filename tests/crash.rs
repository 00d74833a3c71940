//! Crash safety, as a user would see it: the real binary, killed with
//! SIGKILL right after it acknowledged events, again and again.
//!
//! Twenty rounds: start (or restart) the node on the same data directory,
//! resume the subscriber from the last cursor it saw, ingest payments whose
//! SLA (3 s in `tests/models/crash.toml`) has not passed yet, and kill -9
//! the moment the acknowledgements are in. The tiers come due while the
//! node is down or restarting. Then, on a final run: every acknowledged
//! event is there; each customer's two escalations (and their resolutions)
//! are recorded exactly once in the log; and the subscriber, resuming from
//! its last cursor after every crash, received exactly the log, no gap, no
//! repeat.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{Received, escalation_id, recorded_once, replay_log};
use common::{NodeProcess, event, eventually, fresh_dir, ingest, root};
use handoff::api::pb;

const ROUNDS: usize = 20;
const CUSTOMERS_PER_ROUND: usize = 3;

/// Follows the stream from the last cursor until it breaks (the node died).
async fn follow(node_addr: String, received: Arc<Mutex<Received>>) {
    let channel = match tonic::transport::Endpoint::from_shared(format!("http://{node_addr}"))
        .expect("a valid uri")
        .connect()
        .await
    {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut client = pb::escalations_client::EscalationsClient::new(channel);
    let cursor = received.lock().expect("not poisoned").resume_from();
    let Ok(stream) = client
        .subscribe(pb::SubscribeRequest {
            cursor,
            ..Default::default()
        })
        .await
    else {
        return;
    };
    let mut stream = stream.into_inner();
    while let Ok(Some(e)) = stream.message().await {
        received.lock().expect("not poisoned").record(e);
    }
}

fn customer(round: usize, i: usize) -> String {
    format!("crash-{round:02}-{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_lose_nothing_acknowledged_and_escalate_exactly_once() {
    let data = fresh_dir("crash");
    let model = root().join("tests/models/crash.toml");
    let received = Arc::new(Mutex::new(Received::default()));
    let mut acked: Vec<(String, String)> = Vec::new(); // (customer, event id)

    let mut node = NodeProcess::start(&data, &model);
    for round in 0..ROUNDS {
        if round > 0 {
            node.restart();
        }
        let follower = tokio::spawn(follow(node.addr.clone(), received.clone()));
        let mut client = node.lifecycle().await;
        for i in 0..CUSTOMERS_PER_ROUND {
            let c = customer(round, i);
            let deal = format!("deal-{c}");
            let pay = format!("pay-{c}");
            let r = ingest(&mut client, event(&deal, "crm", "deal_won", &c, "US")).await;
            assert_eq!(r.outcome, pb::Outcome::Applied as i32);
            let r = ingest(
                &mut client,
                event(&pay, "billing", "payment_succeeded", &c, ""),
            )
            .await;
            assert_eq!(r.outcome, pb::Outcome::Applied as i32);
            assert_eq!(r.states["lifecycle"], "paid");
            acked.push((c.clone(), deal));
            acked.push((c, pay));
        }
        // Right after the acknowledgements: no flush, no goodbye.
        node.kill9();
        let _ = follower.await;
    }

    // The last run: let every tier come due and be delivered.
    node.restart();
    let follower = tokio::spawn(follow(node.addr.clone(), received.clone()));
    let customers = ROUNDS * CUSTOMERS_PER_ROUND;
    eventually(
        Duration::from_secs(90),
        "two escalations per customer",
        || {
            let received = received.clone();
            async move {
                let n = received.lock().expect("not poisoned").events.len();
                (n >= 2 * customers).then_some(())
            }
        },
    )
    .await;

    // Access for everyone: each escalation resolves.
    let mut client = node.lifecycle().await;
    for round in 0..ROUNDS {
        for i in 0..CUSTOMERS_PER_ROUND {
            let c = customer(round, i);
            let r = ingest(
                &mut client,
                event(&format!("acc-{c}"), "access", "access_granted", &c, ""),
            )
            .await;
            assert_eq!(r.states["lifecycle"], "active", "{c}");
        }
    }
    eventually(
        Duration::from_secs(60),
        "every resolution delivered",
        || {
            let received = received.clone();
            async move {
                let n = received.lock().expect("not poisoned").events.len();
                (n >= 4 * customers).then_some(())
            }
        },
    )
    .await;

    // Every acknowledged event is there.
    for (c, id) in &acked {
        let view = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: c.clone(),
                timeline_limit: 0,
            })
            .await
            .expect("the customer exists after the crashes")
            .into_inner();
        assert!(
            view.timeline
                .iter()
                .any(|t| t.summary.contains(&format!("`{id}`"))),
            "acknowledged event {id} of {c} is in its timeline"
        );
        let proof = if id.starts_with("deal") {
            "contract"
        } else {
            "payment"
        };
        let p = view
            .proofs
            .iter()
            .find(|p| p.proof == proof)
            .expect("the proof");
        assert_eq!(
            p.established_by.as_ref().map(|e| e.id.as_str()),
            Some(id.as_str())
        );
    }

    // Recorded exactly once: the whole log, replayed from the start.
    let log = replay_log(&node.addr, 4 * customers).await;
    let counts = recorded_once(&log);
    for round in 0..ROUNDS {
        for i in 0..CUSTOMERS_PER_ROUND {
            let c = customer(round, i);
            for (tier, kind) in [
                (0, pb::EscalationKind::TierReached),
                (1, pb::EscalationKind::Breached),
                (0, pb::EscalationKind::Resolved),
                (1, pb::EscalationKind::Resolved),
            ] {
                let id = escalation_id(&c, tier);
                assert!(
                    counts.contains_key(&(id.clone(), kind as i32)),
                    "{id} {kind:?} is in the log"
                );
            }
        }
    }
    assert_eq!(
        log.len(),
        4 * customers,
        "nothing but the expected escalations"
    );

    // The subscriber that resumed after every crash got exactly the log.
    node.terminate();
    let _ = follower.await;
    let got = received.lock().expect("not poisoned");
    let mut got_ids: Vec<(&str, i32)> = got
        .events
        .iter()
        .map(|e| (e.escalation_id.as_str(), e.kind))
        .collect();
    let mut log_ids: Vec<(&str, i32)> = log
        .iter()
        .map(|e| (e.escalation_id.as_str(), e.kind))
        .collect();
    got_ids.sort_unstable();
    log_ids.sort_unstable();
    assert_eq!(
        got_ids, log_ids,
        "resuming from the last cursor loses and repeats nothing"
    );
}
