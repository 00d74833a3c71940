//! SLA clocks on a real node (the `handoff` binary on 127.0.0.1:0): the
//! view a support agent gets over gRPC and from `handoff customer get`
//! while a ticket waits on the customer, and the outcome in Prometheus
//! once it is answered.

mod common;

use common::{NodeProcess, event, fresh_dir, handoff, ingest, root};
use handoff::api::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_ticket_shows_its_clock_and_its_outcome_is_counted() {
    let node = NodeProcess::start(
        &fresh_dir("sla-clocks-node"),
        &root().join("tests/models/office_hours.toml"),
    );
    let mut lc = node.lifecycle().await;
    ingest(&mut lc, event("t1", "desk", "ticket_opened", "k1", "DE")).await;
    ingest(
        &mut lc,
        event("w1", "desk", "waiting_on_customer", "k1", ""),
    )
    .await;

    let view = lc
        .get_customer(pb::GetCustomerRequest {
            customer_id: "k1".into(),
            timeline_limit: 5,
        })
        .await
        .expect("the customer exists")
        .into_inner();
    let sla = &view.slas[0];
    assert_eq!(sla.sla, "first_reply");
    assert!(sla.paused, "waiting on the customer stops the clock");
    assert_eq!(sla.calendar, "de_office");
    assert_eq!(sla.deadline, None, "no deadline while paused");
    assert!(sla.paused_since.is_some());
    assert!(sla.original_deadline.is_some());
    // In nanoseconds: during office hours both halves have a fraction of
    // a second, and their whole seconds alone add up to one short.
    let nanos = |d: &Option<prost_types::Duration>| {
        d.map_or(0, |d| {
            i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos)
        })
    };
    assert_eq!(
        nanos(&sla.elapsed) + nanos(&sla.remaining),
        4 * 3600 * 1_000_000_000,
        "elapsed and remaining add up to the 4 office hours"
    );

    let (code, out, err) = handoff(&["customer", "get", "k1", "--target", &node.addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("of 4h used (calendar de_office)"), "{out}");
    assert!(out.contains("paused since"), "{out}");

    ingest(&mut lc, event("r1", "desk", "customer_replied", "k1", "")).await;
    ingest(&mut lc, event("a1", "desk", "agent_replied", "k1", "")).await;
    let scrape = node.scrape();
    let outcome = scrape
        .lines()
        .find(|l| {
            l.starts_with("handoff_sla_outcomes_total{")
                && l.contains("sla=\"first_reply\"")
                && l.contains("market=\"DE\"")
        })
        .unwrap_or_else(|| panic!("an outcome is counted: {scrape}"));
    // Answered within seconds of office time (or none at night): met.
    assert!(outcome.contains("outcome=\"met\""), "{outcome}");
    assert!(outcome.ends_with(" 1"), "{outcome}");
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("handoff_sla_elapsed_seconds_count{") && l.ends_with(" 1")),
        "{scrape}"
    );
}
