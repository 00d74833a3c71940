//! Versions in a cluster: two real node processes on one real PostgreSQL.
//! A version published and a rollout set through one node reach the
//! other through the shared store (it re-reads on a miss and polls every
//! few seconds): new customers created through either node start on the
//! new version, and the other node lists it and shows the rollout.

mod common;

use std::time::Duration;

use common::cluster::{channel, start_nodes};
use common::{NodeProcess, event, eventually, root};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use handoff::testkit::postgres::LocalPostgres;

/// The version a customer created now through `node` starts on (retried:
/// a shard may be moving between the nodes).
async fn new_customer_version(node: &NodeProcess, id: &str) -> Option<u32> {
    let mut lc = LifecycleClient::new(channel(&node.addr));
    lc.ingest(pb::IngestRequest {
        event: Some(event(&format!("{id}-won"), "crm", "deal_won", id, "DE")),
    })
    .await
    .ok()?;
    let v = lc
        .get_customer(pb::GetCustomerRequest {
            customer_id: id.into(),
            timeline_limit: 0,
        })
        .await
        .ok()?
        .into_inner();
    Some(v.model_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_published_through_one_node_serves_on_the_other() {
    let pg = LocalPostgres::start().expect("starts PostgreSQL");
    let nodes = start_nodes("versions-cluster", &pg.url("handoff"), &["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);

    let text = std::fs::read_to_string(root().join("tests/models/crash.toml")).expect("reads");
    let v2 = common::fresh_dir("versions-cluster-model").join("v2.toml");
    std::fs::write(&v2, text.replace("version = 1", "version = 2")).expect("writes");
    let out = a.ok(&["model", "publish", v2.to_str().expect("utf-8")]);
    assert!(out.contains("published model saas v2"), "{out}");
    a.ok(&["rollout", "set", "--market", "default", "--version", "2"]);

    // New customers through either node start on v2: node b learns of
    // version 2 and the rollout by itself (its poll, or the re-read on a
    // miss), without being asked about versions first.
    for (node, prefix) in [(a, "via-a"), (b, "via-b")] {
        let mut i = 0;
        eventually(
            Duration::from_secs(60),
            &format!("a new customer through {prefix} on v2"),
            || {
                i += 1;
                let id = format!("{prefix}-{i}");
                async move { (new_customer_version(node, &id).await == Some(2)).then_some(()) }
            },
        )
        .await;
    }

    // The other node lists the version and shows the rollout too.
    let out = b.ok(&["model", "list"]);
    assert!(out.contains("saas v2"), "{out}");
    let out = b.ok(&["rollout", "show"]);
    assert!(out.contains("default: v2"), "{out}");
    // The rollout counts are kept by the PostgreSQL store too, summed over
    // the shards and the nodes that wrote them.
    assert!(
        out.lines()
            .any(|l| l.contains("v2:") && l.contains("customers,")),
        "counts on PostgreSQL: {out}"
    );

    // A history exports from a cluster node: every shard's, from the
    // shared database (the facts of each journal entry are one row there).
    let out = b.ok(&["history", "export"]);
    for prefix in ["via-a-", "via-b-"] {
        assert!(
            out.lines()
                .any(|l| l.contains(prefix) && l.contains("deal_won")),
            "{prefix} customers in the export: {out}"
        );
    }
    // A migration scans the database's records of the shards each node
    // serves: a dry run through either node answers.
    for node in [a, b] {
        let out = node.ok(&[
            "customers",
            "migrate",
            "--market",
            "DE",
            "--from",
            "2",
            "--to",
            "1",
            "--dry-run",
        ]);
        assert!(!out.is_empty(), "a dry run reports: {out}");
    }
}
