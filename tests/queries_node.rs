//! `ListCustomers` on a real node (the `handoff` binary on 127.0.0.1:0,
//! real gRPC): loadgen drives 2,000 customers of the reference model,
//! scaled so that its SLAs come due in seconds; then every filter's
//! answer, followed page by page newest first and oldest first, must equal
//! the recount from every customer's own view (GetCustomer), before and
//! after a restart; the CLI's JSON lines agree; bad filters are
//! INVALID_ARGUMENT naming what is allowed.
//!
//! Customers keep moving while timers fire after loadgen ends, so each
//! comparison is polled until the list, the recount and the list again
//! agree (no timing is asserted).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use common::{NodeProcess, eventually, fresh_dir, handoff, root, run_with_limit};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::transport::Channel;

const SCALE: &str = "900";
const CUSTOMERS: usize = 2000;

/// A filter as the request sets it, and how a view answers it.
struct Filter {
    name: &'static str,
    req: pb::ListCustomersRequest,
    holds: fn(&pb::CustomerView) -> bool,
}

fn filters() -> Vec<Filter> {
    let base = pb::ListCustomersRequest::default;
    vec![
        Filter {
            name: "--sla access_after_payment=breached",
            req: pb::ListCustomersRequest {
                sla: "access_after_payment".into(),
                sla_status: "breached".into(),
                ..base()
            },
            holds: |v| {
                v.slas
                    .iter()
                    .any(|s| s.sla == "access_after_payment" && s.breached)
            },
        },
        Filter {
            name: "--sla first_reply=paused",
            req: pb::ListCustomersRequest {
                sla: "first_reply".into(),
                sla_status: "paused".into(),
                ..base()
            },
            holds: |v| v.slas.iter().any(|s| s.sla == "first_reply" && s.paused),
        },
        Filter {
            name: "--sla first_reply=running",
            req: pb::ListCustomersRequest {
                sla: "first_reply".into(),
                sla_status: "running".into(),
                ..base()
            },
            holds: |v| v.slas.iter().any(|s| s.sla == "first_reply" && !s.paused),
        },
        Filter {
            name: "--state lifecycle=paid",
            req: pb::ListCustomersRequest {
                region: "lifecycle".into(),
                state: "paid".into(),
                ..base()
            },
            holds: |v| {
                v.regions
                    .iter()
                    .any(|r| r.region == "lifecycle" && r.state == "paid")
            },
        },
        Filter {
            name: "--state lifecycle=active --market BR",
            req: pb::ListCustomersRequest {
                region: "lifecycle".into(),
                state: "active".into(),
                market: "BR".into(),
                ..base()
            },
            holds: |v| {
                v.market == "BR"
                    && v.regions
                        .iter()
                        .any(|r| r.region == "lifecycle" && r.state == "active")
            },
        },
        Filter {
            name: "--market DE",
            req: pb::ListCustomersRequest {
                market: "DE".into(),
                ..base()
            },
            holds: |v| v.market == "DE",
        },
        Filter {
            name: "--owner provisioning",
            req: pb::ListCustomersRequest {
                owner: "provisioning".into(),
                ..base()
            },
            holds: |v| v.regions.iter().any(|r| r.owner == "provisioning"),
        },
    ]
}

/// Every page of `req`, in order, checking that each page's `since`
/// goes the asked way; the customer ids in page order.
async fn all_pages(
    lc: &mut LifecycleClient<Channel>,
    mut req: pb::ListCustomersRequest,
    limit: u32,
) -> Vec<String> {
    req.limit = limit;
    let mut out = Vec::new();
    let mut last: Option<prost_types::Timestamp> = None;
    loop {
        let page = lc
            .list_customers(req.clone())
            .await
            .expect("lists")
            .into_inner();
        assert!(page.customers.len() <= limit as usize);
        for c in &page.customers {
            let since = c.since.expect("every row has its since");
            if let Some(prev) = last {
                let key = |t: prost_types::Timestamp| (t.seconds, t.nanos);
                if req.oldest_first {
                    assert!(key(prev) <= key(since), "oldest first");
                } else {
                    assert!(key(prev) >= key(since), "newest first");
                }
            }
            last = Some(since);
            out.push(c.customer_id.clone());
        }
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

fn once(ids: &[String], what: &str) -> BTreeSet<String> {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "{what}: a customer came twice");
    set
}

async fn views(
    lc: &mut LifecycleClient<Channel>,
    ids: &BTreeSet<String>,
) -> BTreeMap<String, pb::CustomerView> {
    let mut out = BTreeMap::new();
    for id in ids {
        let v = lc
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.clone(),
                timeline_limit: 1,
            })
            .await
            .expect("a listed customer exists")
            .into_inner();
        out.insert(id.clone(), v);
    }
    out
}

/// Polls until, for every filter, the list (newest first), the recount
/// from every view and the list again (oldest first) agree; returns the
/// agreed sets.
async fn agreed_sets(
    lc: &LifecycleClient<Channel>,
    everyone: &BTreeSet<String>,
) -> Vec<BTreeSet<String>> {
    eventually(Duration::from_secs(240), "lists and views agree", || {
        let mut lc = lc.clone();
        async move {
            let mut before = Vec::new();
            for f in filters() {
                let ids = all_pages(&mut lc, f.req.clone(), 100).await;
                before.push(once(&ids, f.name));
            }
            let views = views(&mut lc, everyone).await;
            let mut agreed = Vec::new();
            for (f, listed) in filters().into_iter().zip(before) {
                let counted: BTreeSet<String> = views
                    .iter()
                    .filter(|(_, v)| (f.holds)(v))
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut req = f.req.clone();
                req.oldest_first = true;
                let after = once(&all_pages(&mut lc, req, 37).await, f.name);
                if listed != counted || after != counted {
                    eprintln!(
                        "{}: listed {} / counted {} / listed again {}; polling",
                        f.name,
                        listed.len(),
                        counted.len(),
                        after.len()
                    );
                    return None;
                }
                agreed.push(counted);
            }
            Some(agreed)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_customers_equals_a_recount_from_every_view() {
    let dir = fresh_dir("queries-node");
    let saas = root().join("examples/saas.toml");
    let scaled = dir.join("saas-scaled.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["model", "scale"])
        .arg(&saas)
        .args(["--by", SCALE])
        .output()
        .expect("model scale runs");
    assert!(out.status.success());
    std::fs::write(&scaled, &out.stdout).expect("write the scaled model");
    let mut node = NodeProcess::start(&dir.join("data"), &scaled);

    let out = run_with_limit(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("loadgen")
            .args(["--target", &node.addr, "--metrics", &node.metrics])
            .arg("--model")
            .arg(&saas)
            .args(["--sla-scale", SCALE])
            .args(["--customers", &CUSTOMERS.to_string()])
            .args(["--failures", "20", "--pauses", "20", "--seed", "14"])
            .args(["--rate", "1000", "--concurrency", "32"])
            .args(["--max-wait", "5", "--settle", "2", "--json"]),
        Duration::from_secs(600),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("\"escalations\""),
        "loadgen ran: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut lc = node.lifecycle().await;
    // Every customer, newest first and oldest first: each exactly once.
    let newest = all_pages(&mut lc, pb::ListCustomersRequest::default(), 100).await;
    let everyone = once(&newest, "every customer, newest first");
    assert_eq!(everyone.len(), CUSTOMERS, "every customer loadgen drove");
    let oldest_req = pb::ListCustomersRequest {
        oldest_first: true,
        ..Default::default()
    };
    let oldest = all_pages(&mut lc, oldest_req, 100).await;
    assert_eq!(once(&oldest, "oldest first"), everyone);
    let mut reversed = oldest.clone();
    reversed.reverse();
    assert_eq!(reversed, newest, "the same order, reversed");

    let sets = agreed_sets(&lc, &everyone).await;
    assert!(
        !sets[0].is_empty(),
        "the failures breach access_after_payment"
    );
    for (f, set) in filters().iter().zip(&sets) {
        eprintln!("{}: {} customers", f.name, set.len());
    }

    // The CLI's JSON lines, every page.
    let (code, out, err) = handoff(&[
        "customers",
        "list",
        "--sla",
        "access_after_payment=breached",
        "--json",
        "--all",
        "--limit",
        "50",
        "--target",
        &node.addr,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let mut cli = BTreeSet::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        for field in ["customer_id", "market", "model_version", "states"] {
            assert!(!v[field].is_null(), "{field} in {line}");
        }
        cli.insert(v["customer_id"].as_str().expect("an id").to_owned());
    }
    // Timers may have moved a customer since; the node agreed above.
    let now = once(
        &all_pages(&mut lc, filters()[0].req.clone(), 100).await,
        "breached",
    );
    assert!(
        cli == sets[0] || cli == now,
        "the CLI lists what the call does"
    );

    // A restart keeps the indexes.
    assert!(node.terminate().success(), "a graceful stop");
    node.restart();
    let mut lc = node.lifecycle().await;
    let again = all_pages(&mut lc, pb::ListCustomersRequest::default(), 250).await;
    assert_eq!(once(&again, "after a restart"), everyone);
    agreed_sets(&lc, &everyone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_invalid_argument_naming_what_is_allowed() {
    let node = NodeProcess::start(
        &fresh_dir("queries-bad"),
        &root().join("examples/saas.toml"),
    );
    let mut lc = node.lifecycle().await;
    let base = pb::ListCustomersRequest::default;
    let cases = [
        (
            pb::ListCustomersRequest {
                market: "XX".into(),
                ..base()
            },
            "declared markets: US, DE, BR",
        ),
        (
            pb::ListCustomersRequest {
                region: "nowhere".into(),
                state: "paid".into(),
                ..base()
            },
            "declared regions: lifecycle, billing, support",
        ),
        (
            pb::ListCustomersRequest {
                region: "lifecycle".into(),
                state: "gone".into(),
                ..base()
            },
            "its states: lead, onboarding, paid, active",
        ),
        (
            pb::ListCustomersRequest {
                sla: "nope".into(),
                sla_status: "breached".into(),
                ..base()
            },
            "declared SLAs: access_after_payment, onboarding_to_payment",
        ),
        (
            pb::ListCustomersRequest {
                sla: "first_reply".into(),
                sla_status: "late".into(),
                ..base()
            },
            "the statuses are: running, paused, breached",
        ),
        (
            pb::ListCustomersRequest {
                owner: "nobody".into(),
                ..base()
            },
            "declared teams: marketing, sales",
        ),
        (
            pb::ListCustomersRequest {
                page_token: "not-a-token".into(),
                ..base()
            },
            "next_page_token",
        ),
        (
            pb::ListCustomersRequest {
                limit: 1001,
                ..base()
            },
            "1 to 1000",
        ),
    ];
    for (req, want) in cases {
        let err = lc.list_customers(req.clone()).await.expect_err("refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{req:?}: {err:?}");
        assert!(err.message().contains(want), "{req:?}: {}", err.message());
    }
    // A token of another query is refused too.
    let t = "01".to_owned() + &"06".repeat(4);
    let err = lc
        .list_customers(pb::ListCustomersRequest {
            market: "US".into(),
            page_token: t,
            ..base()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // The CLI says so and exits non-zero.
    let (code, _, err) = handoff(&[
        "customers",
        "list",
        "--sla",
        "first_reply=late",
        "--target",
        &node.addr,
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("running, paused, breached"), "{err}");
}
