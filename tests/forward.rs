//! Any node answers any call: two nodes in one process, each on its own
//! store and serving half of the 16 shards (A 0..8, B 8..16), each behind
//! the real gRPC edge on its own port, with a map of shard owners the test
//! changes (the lease manager's part). Calls go to A; what B's shards hold
//! must be B's doing, seen in B's store.

mod common;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::api::{authorize, check_message, customer, ghost, list_open, outcome};
use common::{event, eventually, ingest};
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use handoff::api::{Edge, Locate, MOVE_WAIT, Routing, pb, serve_routed};
use handoff::auth::{CredentialConfig, new_token, token_hash_hex};
use handoff::clock::SystemClock;
use handoff::engine::model::{Model, load};
use handoff::node::{Node, NodeConfig};
use handoff::store::{MemoryStore, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};

const SHARDS: u32 = 16;
const A_SHARDS: Range<u32> = 0..8;
const B_SHARDS: Range<u32> = 8..16;
const WAIT: Duration = Duration::from_secs(20);

/// The lease manager's view, as a map the test sets: shard -> address.
struct Owners {
    id: String,
    map: Mutex<HashMap<u32, String>>,
    /// How often each shard's owner was asked: a call waiting for a
    /// moving shard asks again and again.
    asked: Mutex<HashMap<u32, usize>>,
}

impl Owners {
    fn set(&self, shard: u32, owner: Option<&str>) {
        let mut map = self.map.lock().expect("not poisoned");
        match owner {
            Some(addr) => map.insert(shard, addr.to_owned()),
            None => map.remove(&shard),
        };
    }

    fn asked(&self, shard: u32) -> usize {
        let asked = self.asked.lock().expect("not poisoned");
        asked.get(&shard).copied().unwrap_or(0)
    }
}

impl Locate for Owners {
    fn owner(&self, shard: u32) -> Option<String> {
        *self
            .asked
            .lock()
            .expect("not poisoned")
            .entry(shard)
            .or_default() += 1;
        self.map.lock().expect("not poisoned").get(&shard).cloned()
    }

    fn node_id(&self) -> &str {
        &self.id
    }
}

/// One node of the pair.
struct Member {
    node: Arc<Node>,
    store: Arc<MemoryStore>,
    addr: String,
    owners: Arc<Owners>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Member {
    async fn lifecycle(&self) -> LifecycleClient<Channel> {
        LifecycleClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connects to the node")
    }

    async fn escalations(&self) -> EscalationsClient<Channel> {
        EscalationsClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connects to the node")
    }

    /// Whether `customer` is in this node's store.
    fn holds(&self, customer: &str) -> bool {
        let shard = self.node.shard_of(customer);
        self.store
            .customer(shard, customer)
            .expect("the memory store reads")
            .is_some()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
        self.node.shutdown().await;
    }
}

fn model() -> Arc<Model> {
    let text = include_str!("models/fast.toml");
    Arc::new(load("fast.toml", text).expect("the fast model loads"))
}

/// A and B, each serving its half, each routing by the same map.
async fn pair(edge_a: Edge, edge_b: Edge) -> (Member, Member) {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await.expect("a free port"),
        TcpListener::bind("127.0.0.1:0").await.expect("a free port"),
    ];
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").to_string())
        .collect();
    let mut members = Vec::new();
    for ((listener, (id, half)), edge) in listeners
        .into_iter()
        .zip([("a", A_SHARDS), ("b", B_SHARDS)])
        .zip([edge_a, edge_b])
    {
        let owners = Arc::new(Owners {
            id: id.to_owned(),
            map: Mutex::new(
                (0..SHARDS)
                    .map(|s| (s, addrs[usize::from(!A_SHARDS.contains(&s))].clone()))
                    .collect(),
            ),
            asked: Mutex::new(HashMap::new()),
        });
        let store = Arc::new(MemoryStore::new());
        let config = NodeConfig {
            shards: SHARDS,
            ..NodeConfig::default()
        };
        let node = Node::open_unowned(config, model(), store.clone(), Arc::new(SystemClock))
            .await
            .expect("the node opens");
        for shard in half {
            node.start_shard(shard, 1, None)
                .await
                .expect("the shard starts");
        }
        let node = Arc::new(node);
        let addr = listener.local_addr().expect("bound").to_string();
        let routing = Arc::new(Routing::new(owners.clone(), addr.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(serve_routed(
            node.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
            edge,
            Some(routing),
        ));
        members.push(Member {
            node,
            store,
            addr,
            owners,
            stop: Some(stop),
            served: Some(tokio::spawn(async move {
                served
                    .await
                    .expect("the server task ends")
                    .expect("the server ran")
            })),
        });
    }
    let b = members.pop().expect("two members");
    let a = members.pop().expect("two members");
    (a, b)
}

/// `n` customer ids whose shards are in `shards`.
fn customers_in(shards: Range<u32>, tag: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{tag}-{i}"))
        .filter(|c| shards.contains(&handoff::shard::shard_of(c, SHARDS)))
        .take(n)
        .collect()
}

fn customer_in(shards: Range<u32>, tag: &str) -> String {
    customers_in(shards, tag, 1).remove(0)
}

fn shard(customer: &str) -> u32 {
    handoff::shard::shard_of(customer, SHARDS)
}

/// A refusal that tells the caller to retry the same event.
fn assert_retry(status: &Status, what: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
    assert!(
        status.message().contains("moving") && status.message().ends_with("retry: same event id"),
        "{what}: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_for_a_shard_served_elsewhere_is_answered_by_its_owner() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let mut via_a = a.lifecycle().await;
    let remote = customer_in(B_SHARDS, "remote");
    let local = customer_in(A_SHARDS, "local");

    let won = ingest(&mut via_a, event("w1", "crm", "deal_won", &remote, "US")).await;
    assert_eq!(outcome(&won), pb::Outcome::Applied, "{won:?}");
    assert_eq!(won.states["lifecycle"], "onboarding");
    assert!(
        b.holds(&remote) && !a.holds(&remote),
        "B's customer is in B's store only"
    );
    let here = ingest(&mut via_a, event("l1", "crm", "lead_created", &local, "US")).await;
    assert_eq!(outcome(&here), pb::Outcome::Applied, "{here:?}");
    assert!(
        a.holds(&local) && !b.holds(&local),
        "A's customer stays on A"
    );

    // What was ingested through A is what A answers about, from B.
    let view = customer(&mut via_a, &remote, 10).await.expect("the view");
    assert_eq!(view.customer_id, remote);
    assert!(!view.timeline.is_empty(), "{view:?}");
    let d = authorize(&mut via_a, &remote, "concierge", "schedule_kickoff")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    let d = check_message(&mut via_a, &remote, "onboarding")
        .await
        .expect("answered");
    assert!(d.allowed, "{d:?}");
    // A redelivery through A is B's duplicate; an unknown customer of B's
    // half is B's NOT_FOUND; a malformed event is B's INVALID_ARGUMENT.
    let again = ingest(&mut via_a, event("w1", "crm", "deal_won", &remote, "US")).await;
    assert_eq!(outcome(&again), pb::Outcome::Duplicate, "{again:?}");
    let unknown = customer_in(B_SHARDS, "nobody");
    let err = customer(&mut via_a, &unknown, 0)
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = via_a
        .ingest(pb::IngestRequest {
            event: Some(event("", "crm", "deal_won", &remote, "US")),
        })
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("id is empty"), "{err:?}");

    // Acknowledge: a ghost customer of B's half, made through A, escalates
    // on B (its timers run there); A takes the acknowledgement to B.
    let ghosted = customer_in(B_SHARDS, "ghost");
    ghost(&mut via_a, &ghosted, "US").await;
    let mut b_escalations = b.escalations().await;
    let open = eventually(WAIT, "the ghost's escalation on B", || {
        let mut b_escalations = b_escalations.clone();
        let ghosted = ghosted.clone();
        async move {
            let open = list_open(&mut b_escalations, "").await.ok()?;
            open.into_iter().find(|e| e.customer_id == ghosted)
        }
    })
    .await;
    let mut a_escalations = a.escalations().await;
    let ack = common::api::acknowledge(&mut a_escalations, &open.escalation_id, &open.team)
        .await
        .expect("acknowledged through A");
    assert!(ack.acknowledged, "{ack:?}");
    let after = list_open(&mut b_escalations, &open.team)
        .await
        .expect("B lists");
    let acked = after
        .iter()
        .find(|e| e.escalation_id == open.escalation_id)
        .expect("still open, now acknowledged");
    assert!(acked.acknowledged, "{acked:?}");

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_keeps_its_order_and_each_event_lands_on_its_owner() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let mut via_a = a.lifecycle().await;
    let ours = customers_in(A_SHARDS, "mix", 6);
    let theirs = customers_in(B_SHARDS, "mix", 6);
    // Alternating halves, and a pattern of event types that does not
    // follow the halves, so an answer in the wrong slot shows.
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..12 {
        let c = if i % 2 == 0 {
            &ours[i / 2]
        } else {
            &theirs[i / 2]
        };
        let (ty, state) = if i % 3 == 0 {
            ("lead_created", "lead")
        } else {
            ("deal_won", "onboarding")
        };
        events.push(event(&format!("m{i}"), "crm", ty, c, "US"));
        expected.push(Some(state));
    }
    // Malformed at the edge (A), and malformed for the node (B's).
    let mut bad_time = event("bad-time", "crm", "deal_won", &theirs[0], "US");
    bad_time.occurred_at = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: 2_000_000_000,
    });
    events.insert(3, bad_time);
    expected.insert(3, None);
    let no_id = customer_in(B_SHARDS, "no-id");
    events.insert(7, event("", "crm", "deal_won", &no_id, "US"));
    expected.insert(7, None);

    let request = pb::IngestBatchRequest {
        events: events.clone(),
    };
    let results = via_a
        .ingest_batch(request.clone())
        .await
        .expect("the batch is answered")
        .into_inner()
        .results;
    assert_eq!(results.len(), events.len());
    for (i, (r, want)) in results.iter().zip(&expected).enumerate() {
        match want {
            Some(state) => {
                assert_eq!(outcome(r), pb::Outcome::Applied, "slot {i}: {r:?}");
                assert_eq!(r.states["lifecycle"], *state, "slot {i}: {r:?}");
            }
            None => assert_eq!(outcome(r), pb::Outcome::Rejected, "slot {i}: {r:?}"),
        }
    }
    assert!(
        results[7].reason.contains("id is empty"),
        "{:?}",
        results[7]
    );
    for c in &ours {
        assert!(a.holds(c) && !b.holds(c), "{c} lands on A only");
    }
    for c in &theirs {
        assert!(b.holds(c) && !a.holds(c), "{c} lands on B only");
    }
    assert!(!a.holds(&no_id) && !b.holds(&no_id));

    // The same batch again: every applied event is a duplicate, in place.
    let again = via_a
        .ingest_batch(request)
        .await
        .expect("the batch is answered")
        .into_inner()
        .results;
    for (i, (r, want)) in again.iter().zip(&expected).enumerate() {
        let o = if want.is_some() {
            pb::Outcome::Duplicate
        } else {
            pb::Outcome::Rejected
        };
        assert_eq!(outcome(r), o, "slot {i}: {r:?}");
    }

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_call_is_not_forwarded_again() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let c = customer_in(B_SHARDS, "bounce");
    let s = shard(&c);
    // B lets the shard go and believes A has it; A still believes B does.
    b.node.stop_shard(s, true).await;
    b.owners.set(s, Some(&a.addr));
    let mut via_a = a.lifecycle().await;
    let started = Instant::now();
    let call = via_a.ingest(pb::IngestRequest {
        event: Some(event("b1", "crm", "deal_won", &c, "US")),
    });
    let err = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call ends: it is not passed back and forth")
        .expect_err("no node serves the shard");
    let took = started.elapsed();
    assert_retry(&err, "a call forwarded to a node that lost the shard");
    assert!(
        err.message().contains("node `a` forwarded this call here"),
        "B answered, after one hop: {err:?}"
    );
    assert!(
        took >= MOVE_WAIT && took < MOVE_WAIT + Duration::from_secs(5),
        "B waited, then answered: {took:?}"
    );
    assert!(!a.holds(&c) && !b.holds(&c));

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_with_no_owner_waits_then_is_unavailable() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let c = customer_in(B_SHARDS, "orphan");
    let s = shard(&c);
    b.node.stop_shard(s, true).await;
    a.owners.set(s, None);
    let mut via_a = a.lifecycle().await;

    let started = Instant::now();
    let err = customer(&mut via_a, &c, 0).await.expect_err("no owner");
    let took = started.elapsed();
    assert_retry(&err, "a shard with no owner");
    assert!(
        took >= MOVE_WAIT && took < MOVE_WAIT + Duration::from_secs(5),
        "{took:?}"
    );

    // A batch with one customer of that shard fails whole, before any of
    // it is ingested: the caller retries it all with the same ids.
    let others = [
        customer_in(A_SHARDS, "with-orphan"),
        customers_in(B_SHARDS, "with-orphan", 16)
            .into_iter()
            .find(|o| shard(o) != s)
            .expect("a customer of another of B's shards"),
    ];
    let batch = pb::IngestBatchRequest {
        events: vec![
            event("o1", "crm", "lead_created", &others[0], "US"),
            event("o2", "crm", "lead_created", &c, "US"),
            event("o3", "crm", "lead_created", &others[1], "US"),
        ],
    };
    let err = via_a.ingest_batch(batch).await.expect_err("no owner");
    assert_retry(&err, "a batch with a customer of a shard with no owner");
    for o in &others {
        assert!(!a.holds(o) && !b.holds(o), "{o} was not ingested");
    }

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_served_during_the_wait_is_answered() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let moving = customers_in(B_SHARDS, "moving", 16);
    let to_b = moving[0].clone();
    let to_a = moving
        .iter()
        .find(|c| shard(c) != shard(&to_b))
        .expect("customers of two of B's shards")
        .clone();
    for c in [&to_b, &to_a] {
        b.node.stop_shard(shard(c), true).await;
        a.owners.set(shard(c), None);
    }

    // Moves back to B: B serves it again and A learns so.
    let call = {
        let mut via_a = a.lifecycle().await;
        let c = to_b.clone();
        tokio::spawn(async move {
            ingest(&mut via_a, event("v1", "crm", "lead_created", &c, "US")).await
        })
    };
    let before = a.owners.asked(shard(&to_b));
    eventually(WAIT, "the call waiting for the shard", || {
        let asked = a.owners.asked(shard(&to_b));
        async move { (asked >= before + 2).then_some(()) }
    })
    .await;
    b.node
        .start_shard(shard(&to_b), 2, None)
        .await
        .expect("the shard starts");
    a.owners.set(shard(&to_b), Some(&b.addr));
    let r = call.await.expect("the call ends");
    assert_eq!(outcome(&r), pb::Outcome::Applied, "{r:?}");
    assert_eq!(r.states["lifecycle"], "lead", "{r:?}");
    assert!(b.holds(&to_b) && !a.holds(&to_b));

    // Moves to A: A itself starts serving it.
    let call = {
        let mut via_a = a.lifecycle().await;
        let c = to_a.clone();
        tokio::spawn(async move {
            ingest(&mut via_a, event("v2", "crm", "lead_created", &c, "US")).await
        })
    };
    let before = a.owners.asked(shard(&to_a));
    eventually(WAIT, "the call waiting for the shard", || {
        let asked = a.owners.asked(shard(&to_a));
        async move { (asked >= before + 2).then_some(()) }
    })
    .await;
    a.node
        .start_shard(shard(&to_a), 2, None)
        .await
        .expect("the shard starts");
    let r = call.await.expect("the call ends");
    assert_eq!(outcome(&r), pb::Outcome::Applied, "{r:?}");
    assert!(a.holds(&to_a) && !b.holds(&to_a));

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_admits_the_caller_by_the_same_credentials_and_rules() {
    // A runs open; B requires a token, here a billing source's.
    let token = new_token().expect("a token");
    let config = NodeConfig {
        credentials: vec![CredentialConfig {
            principal: "source:billing".into(),
            sha256: token_hash_hex(&token),
        }],
        ..NodeConfig::default()
    };
    let edge_b = Edge::from_config(&config, &model(), false).expect("B's edge");
    let (a, b) = pair(Edge::open(), edge_b).await;
    let c = customer_in(B_SHARDS, "authed");
    let mut via_a = a.lifecycle().await;
    let with_token = |e: pb::Event| {
        let mut r = tonic::Request::new(pb::IngestRequest { event: Some(e) });
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        r
    };

    // Without the token, B refuses the forwarded call.
    let err = via_a
        .ingest(pb::IngestRequest {
            event: Some(event("p0", "billing", "payment_succeeded", &c, "US")),
        })
        .await
        .expect_err("B requires credentials");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // With it, B admits it as the billing source: billing events pass,
    // a crm event is B's PERMISSION_DENIED.
    let paid = via_a
        .ingest(with_token(event(
            "p1",
            "billing",
            "payment_succeeded",
            &c,
            "US",
        )))
        .await
        .expect("B admits the billing source")
        .into_inner();
    assert_eq!(outcome(&paid), pb::Outcome::Applied, "{paid:?}");
    let err = via_a
        .ingest(with_token(event("w1", "crm", "deal_won", &c, "US")))
        .await
        .expect_err("the billing source may not send crm events");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(b.holds(&c) && !a.holds(&c));

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_cannot_be_reached_is_unavailable_with_retry() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let c = customer_in(B_SHARDS, "unreachable");
    // The map names an address where nothing listens any more.
    let gone = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let gone_addr = gone.local_addr().expect("bound").to_string();
    drop(gone);
    a.owners.set(shard(&c), Some(&gone_addr));
    let mut via_a = a.lifecycle().await;
    let call = customer(&mut via_a, &c, 0);
    let err = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call ends")
        .expect_err("the owner cannot be reached");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&gone_addr) && err.message().ends_with("retry: same event id"),
        "{err:?}"
    );

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_stops_answering_fails_its_calls_within_seconds() {
    let (a, b) = pair(Edge::open(), Edge::open()).await;
    let c = customer_in(B_SHARDS, "silent");
    // Connections to it open (the kernel accepts them) and then nothing
    // answers, as with a paused process.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let silent_addr = silent.local_addr().expect("bound").to_string();
    a.owners.set(shard(&c), Some(&silent_addr));
    let mut via_a = a.lifecycle().await;
    let started = Instant::now();
    let call = customer(&mut via_a, &c, 0);
    let err = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call ends")
        .expect_err("the owner never answers");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&silent_addr) && err.message().ends_with("retry: same event id"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    drop(silent);

    a.stop().await;
    b.stop().await;
}
