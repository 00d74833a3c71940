//! Editing the model file of a node with customers, as an operator would:
//! the real binary, stopped and started again on the same data directory
//! with another file each time.
//!
//! - The same model with its declarations reordered and its comments gone
//!   serves every customer in the state it was in.
//! - A changed model (a `trial` state declared before `paid`) under the
//!   version already served is refused, naming the version and the fix.
//! - The same change as version 2 serves: customers keep their states by
//!   name and their version (1); a new customer starts on version 2, where
//!   the new state works.
//! - Going back to the file of version 1, which lacks `trial`, serves both
//!   versions' customers as they were (versions are kept, see
//!   docs/versions.md).
//! - A start that fails (port in use) leaves no data directory behind.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{NodeProcess, event, fresh_dir, handoff, ingest, root};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::transport::Channel;

/// Every customer's states and proofs, by name.
type Seen = BTreeMap<String, (BTreeMap<String, String>, Vec<String>)>;

const CUSTOMERS: [(&str, &[(&str, &str)]); 5] = [
    ("c-lead", &[("crm", "lead_created")]),
    ("c-onboarding", &[("crm", "deal_won")]),
    (
        "c-paid",
        &[("crm", "deal_won"), ("billing", "payment_succeeded")],
    ),
    (
        "c-active",
        &[
            ("crm", "deal_won"),
            ("billing", "payment_succeeded"),
            ("access", "access_granted"),
        ],
    ),
    (
        "c-disputed",
        &[
            ("crm", "deal_won"),
            ("billing", "payment_succeeded"),
            ("billing", "dispute_opened"),
        ],
    ),
];

async fn seen(node: &NodeProcess) -> Seen {
    let mut client = node.lifecycle().await;
    let mut out = Seen::new();
    for (customer, _) in CUSTOMERS {
        let view = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: customer.into(),
                timeline_limit: 0,
            })
            .await
            .expect("the customer is there")
            .into_inner();
        let states = view
            .regions
            .iter()
            .map(|r| (r.region.clone(), r.state.clone()))
            .collect();
        let mut proofs: Vec<String> = view
            .proofs
            .iter()
            .filter(|p| p.holds)
            .map(|p| p.proof.clone())
            .collect();
        proofs.sort();
        out.insert(customer.to_owned(), (states, proofs));
    }
    out
}

fn state<'a>(seen: &'a Seen, customer: &str, region: &str) -> &'a str {
    seen[customer].0[region].as_str()
}

/// Runs `handoff serve` expecting it to refuse to start; returns stderr.
fn refused(data: &Path, model: &Path, extra: &[&str]) -> String {
    let (data, model) = (data.display().to_string(), model.display().to_string());
    let mut args = vec!["serve", "--data", &data, "--model", &model];
    args.extend(["--metrics", "127.0.0.1:0"]);
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend(extra);
    let (code, stdout, stderr) = handoff(&args);
    assert!(
        code.is_some_and(|c| c != 0),
        "the node exited {code:?}; stdout: {stdout}"
    );
    assert!(
        !stdout.contains("handoff serving"),
        "the node began to serve: {stdout}"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_model_never_reinterprets_stored_customers() {
    let data = fresh_dir("model-edit");
    let saas = root().join("examples/saas.toml");
    let reordered = root().join("tests/models/saas_reordered.toml");
    let trial_v1 = root().join("tests/models/saas_trial.toml");

    // Customers in every lifecycle state the journey reaches, one disputed.
    let mut node = NodeProcess::start(&data, &saas);
    let mut client = node.lifecycle().await;
    for (customer, events) in CUSTOMERS {
        for (i, (source, ty)) in events.iter().enumerate() {
            let r = ingest(
                &mut client,
                event(&format!("{customer}-{i}"), source, ty, customer, "DE"),
            )
            .await;
            assert_eq!(r.outcome(), pb::Outcome::Applied, "{customer} {ty}: {r:?}");
        }
    }
    let before = seen(&node).await;
    assert_eq!(state(&before, "c-active", "lifecycle"), "active");
    assert_eq!(state(&before, "c-paid", "lifecycle"), "paid");
    assert_eq!(state(&before, "c-disputed", "billing"), "disputed");
    let fingerprint = node
        .banner
        .split('[')
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("the banner names the model's fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 12, "{}", node.banner);
    assert!(node.banner.contains("saas.toml"), "{}", node.banner);
    assert!(node.terminate().success());

    // The same model, declarations reordered: every customer as it was,
    // and new events decided on the right states.
    let mut node = NodeProcess::start(&data, &reordered);
    assert!(
        node.banner.contains(&format!("[{fingerprint}]")),
        "the same model has the same fingerprint: {}",
        node.banner
    );
    assert_eq!(seen(&node).await, before);
    let mut client = node.lifecycle().await;
    let r = ingest(
        &mut client,
        event("late-access", "access", "access_granted", "c-paid", "DE"),
    )
    .await;
    assert_eq!(r.outcome(), pb::Outcome::Applied, "{r:?}");
    let after_access = seen(&node).await;
    assert_eq!(state(&after_access, "c-paid", "lifecycle"), "active");
    assert!(node.terminate().success());

    // A changed model under version 1: refused, naming the version and
    // what to do.
    let err = refused(&data, &trial_v1, &[]);
    assert!(
        err.contains("model version 1 was served on this data directory with different content"),
        "{err}"
    );
    assert!(err.contains("`version = 2`"), "{err}");

    // The same change as version 2: customers keep their states by name
    // and stay on version 1 (pinned); new customers start on version 2,
    // published by this start, where the new state works.
    let trial_v2 = data.with_extension("trial-v2.toml");
    let text = std::fs::read_to_string(&trial_v1).expect("reads the model");
    std::fs::write(&trial_v2, text.replace("version = 1", "version = 2")).expect("writes");
    let mut node = NodeProcess::start(&data, &trial_v2);
    assert_eq!(seen(&node).await, after_access);
    let mut client = node.lifecycle().await;
    let r = ingest(
        &mut client,
        event("sepa", "crm", "sepa_mandate_signed", "c-onboarding", "DE"),
    )
    .await;
    assert_eq!(
        r.outcome(),
        pb::Outcome::Ignored,
        "version 1 has no trial: {r:?}"
    );
    for (id, ty) in [("new-won", "deal_won"), ("new-sepa", "sepa_mandate_signed")] {
        let r = ingest(&mut client, event(id, "crm", ty, "c-new", "DE")).await;
        assert_eq!(r.outcome(), pb::Outcome::Applied, "{r:?}");
    }
    let trial = |client: &mut LifecycleClient<Channel>| {
        let mut client = client.clone();
        async move {
            let v = client
                .get_customer(pb::GetCustomerRequest {
                    customer_id: "c-new".into(),
                    timeline_limit: 0,
                })
                .await
                .expect("c-new exists")
                .into_inner();
            let lifecycle = v.regions.iter().find(|r| r.region == "lifecycle");
            (v.model_version, lifecycle.map(|r| r.state.clone()))
        }
    };
    assert_eq!(trial(&mut client).await, (2, Some("trial".into())));
    let with_trial = seen(&node).await;
    assert_eq!(state(&with_trial, "c-active", "lifecycle"), "active");
    assert!(node.terminate().success());

    // Back to the file of version 1, which has no `trial`: both versions
    // are published, so each customer is still served by its own.
    let node = NodeProcess::start(&data, &saas);
    assert_eq!(seen(&node).await, with_trial);
    let mut client = node.lifecycle().await;
    assert_eq!(trial(&mut client).await, (2, Some("trial".into())));
}

#[test]
fn a_start_that_fails_leaves_no_data_directory_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds a port");
    let port = taken.local_addr().expect("has an address").to_string();
    let data = fresh_dir("failed-start").join("data");
    let err = refused(
        &data,
        &root().join("examples/saas.toml"),
        &["--listen", &port],
    );
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(
        !data.exists(),
        "a failed start left {} behind",
        data.display()
    );
}
