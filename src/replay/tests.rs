//! The replay gate on the reference model: a round trip through the
//! store (facts in, `simulate` lines out, the same answers), and the diff
//! of two versions over a small hand-written history.

use crate::engine::model::catalog::Catalog;
use crate::engine::model::{Model, load};
use crate::engine::{Input, Limits, Timestamp};
use crate::simulate::Simulator;
use crate::store::codec::encode_fact;
use crate::store::{MemoryStore, Store, WriteBatch};
use crate::virtual_time::VirtualTime;

use super::{DiffError, DiffKind, diff, export};

const SAAS: &str = include_str!("../../examples/saas.toml");

fn model(text: &str) -> Model {
    load("saas.toml", text).expect("the model loads")
}

/// A BR ghost customer (paid by boleto, never given access) and a DE
/// customer who goes all the way; a late DE ticket moves the clock on
/// past BR's re-escalation.
const HISTORY: &str = r#"{"at":"2026-03-02T09:00:00Z","ingest":{"id":"crm-1","source":"crm","type":"deal_won","customer":"br-1","market":"BR"}}
{"at":"2026-03-02T09:00:00Z","ingest":{"id":"crm-1","source":"crm","type":"deal_won","customer":"de-1","market":"DE"}}
{"at":"2026-03-02T09:10:00Z","ingest":{"id":"bol-1","source":"billing","type":"boleto_settled","customer":"br-1","market":"BR"}}
{"at":"2026-03-02T09:10:00Z","ingest":{"id":"pay-1","source":"billing","type":"payment_succeeded","customer":"de-1","market":"DE"}}
{"at":"2026-03-02T09:12:00Z","authorize":{"customer":"de-1","team":"provisioning","action":"grant_access"}}
{"at":"2026-03-02T09:20:00Z","ingest":{"id":"acc-1","source":"access","type":"access_granted","customer":"de-1","market":"DE"}}
{"at":"2026-03-02T13:00:00Z","ingest":{"id":"t-1","source":"support","type":"ticket_opened","customer":"de-1","market":"DE"}}
"#;

fn simulate(model: &Model, input: &str) -> String {
    let out = Simulator::new(model, Limits::default(), Vec::new())
        .run(input.as_bytes(), None)
        .expect("the steps run");
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[test]
fn identical_versions_diverge_nowhere() {
    let old = model(SAAS);
    let new = model(&SAAS.replace("version = 1", "version = 2"));
    let r = diff(&old, &new, HISTORY, None, 0.0).expect("the diff runs");
    assert!(r.pass, "{r:#?}");
    assert_eq!(r.steps, 7);
    let markets: Vec<(&str, usize, usize)> = r
        .markets
        .iter()
        .map(|m| (m.market.as_str(), m.customers, m.diverging))
        .collect();
    assert_eq!(markets, [("BR", 1, 0), ("DE", 1, 0)]);
    assert!(r.markets.iter().all(|m| m.examples.is_empty()));
}

#[test]
fn a_shorter_br_sla_diverges_only_in_br_and_only_in_escalation_timing() {
    let old = model(SAAS);
    let shorter = SAAS.replace(
        "access_after_payment = { within = \"30m\" }",
        "access_after_payment = { within = \"15m\" }",
    );
    assert_ne!(shorter, SAAS, "the overlay is where the test expects it");
    let new = model(&shorter);
    let r = diff(&old, &new, HISTORY, None, 0.0).expect("the diff runs");
    assert!(!r.pass);
    let br = &r.markets[0];
    assert_eq!((br.market.as_str(), br.diverging), ("BR", 1));
    assert!(!br.pass);
    for k in DiffKind::ALL {
        let want = usize::from(k == DiffKind::EscalationTiming);
        assert_eq!(br.kinds[k.as_str()], want, "{k:?}: {br:#?}");
    }
    let e = &br.examples[0];
    assert_eq!(
        (e.customer.as_str(), e.kind),
        ("br-1", DiffKind::EscalationTiming)
    );
    // The 50% tier: 09:25 on 30m, 09:17:30 on 15m.
    assert_eq!(e.old["at"], "2026-03-02T09:25:00Z", "{e:#?}");
    assert_eq!(e.new["at"], "2026-03-02T09:17:30Z", "{e:#?}");
    assert_eq!(e.at.to_string(), "2026-03-02T09:17:30Z");
    assert_eq!(
        e.line, 6,
        "NEW's fired as the replay ran to line 6's instant"
    );
    let de = &r.markets[1];
    assert_eq!((de.market.as_str(), de.diverging, de.pass), ("DE", 0, true));

    // A bound the market is within passes the gate.
    let r = diff(&old, &new, HISTORY, None, 50.0).expect("the diff runs");
    assert!(!r.pass, "1 of 1 BR customers is 100%");
    let r = diff(&old, &new, HISTORY, None, 100.0).expect("the diff runs");
    assert!(r.pass);
    // Only DE asked for: nothing diverges there.
    let r = diff(&old, &new, HISTORY, Some("DE"), 0.0).expect("the diff runs");
    assert!(r.pass);
    assert_eq!(r.markets.len(), 1);
}

#[test]
fn a_dropped_transition_is_a_state_difference_and_its_sla_an_escalation_one() {
    let old = model(SAAS);
    let new = model(&SAAS.replace(
        "\ntransitions = [ { region = \"lifecycle\", from = \"onboarding\", on = \"billing.boleto_settled\", to = \"paid\" } ]",
        "",
    ));
    let r = diff(&old, &new, HISTORY, None, 0.0).expect("the diff runs");
    let br = &r.markets[0];
    assert_eq!(br.diverging, 1);
    assert_eq!(br.kinds["state"], 1, "{br:#?}");
    assert_eq!(br.kinds["escalation"], 1, "{br:#?}");
    assert_eq!(br.kinds["escalation_timing"], 0, "{br:#?}");
    let e = &br.examples[0];
    assert_eq!((e.kind, e.line), (DiffKind::State, 3), "{e:#?}");
    assert_eq!(e.old["states"]["lifecycle"], "paid");
    assert_eq!(e.new["states"]["lifecycle"], "onboarding");
    // NEW has no such transition: nothing to cover.
    assert!(
        !br.unexercised_transitions
            .iter()
            .any(|t| t.contains("boleto_settled"))
    );
}

#[test]
fn an_authorization_that_changes_is_a_decision_difference() {
    let old = model(SAAS);
    let new = model(&SAAS.replace(
        "provisioning = [\"grant_access\", \"retry_provisioning\"]",
        "provisioning = [\"retry_provisioning\"]",
    ));
    let r = diff(&old, &new, HISTORY, None, 0.0).expect("the diff runs");
    let de = &r.markets[1];
    assert_eq!((de.market.as_str(), de.diverging), ("DE", 1));
    assert_eq!(de.kinds["decision"], 1, "{de:#?}");
    assert_eq!(de.examples[0].line, 5);
    assert_eq!(de.examples[0].old["allowed"], true);
    assert_eq!(de.examples[0].new["allowed"], false);
    assert_eq!(r.markets[0].diverging, 0);
}

#[test]
fn coverage_names_what_the_history_never_exercised() {
    let m = model(SAAS);
    let r = diff(&m, &m, HISTORY, None, 0.0).expect("the diff runs");
    let (br, de) = (&r.markets[0], &r.markets[1]);
    // BR went lead -> onboarding -> paid by boleto and escalated every
    // access tier; DE went to active and opened a ticket.
    for taken in [
        "lead -> onboarding on crm.deal_won",
        "on billing.boleto_settled",
    ] {
        assert!(
            !br.unexercised_transitions.iter().any(|t| t.contains(taken)),
            "{taken}: {br:#?}"
        );
    }
    assert!(
        br.unexercised_transitions
            .iter()
            .any(|t| t.contains("lifecycle: onboarding -> paid on billing.payment_succeeded")),
        "{br:#?}"
    );
    assert!(
        !br.unexercised_tiers
            .iter()
            .any(|t| t.starts_with("access_after_payment")),
        "{br:#?}"
    );
    assert!(
        de.unexercised_tiers
            .iter()
            .any(|t| t.starts_with("access_after_payment tier 0")),
        "{de:#?}"
    );
    assert!(
        de.unexercised_transitions
            .iter()
            .all(|t| !t.contains("boleto")),
        "DE has no boleto transition: {de:#?}"
    );
}

#[test]
fn a_malformed_line_is_named_by_its_number_and_an_unknown_market_is_refused() {
    let m = model(SAAS);
    let mut bad: Vec<&str> = HISTORY.lines().collect();
    bad.insert(
        2,
        r#"{"at":"2026-03-02T09:05:00Z","ingest":{"id":"x","nope":1}}"#,
    );
    let err = diff(&m, &m, &bad.join("\n"), None, 0.0).expect_err("malformed");
    match err {
        DiffError::Malformed { line, reason } => {
            assert_eq!(line, 3);
            assert!(reason.contains("nope"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let mut backwards: Vec<&str> = HISTORY.lines().collect();
    backwards.swap(5, 6);
    let err = diff(&m, &m, &backwards.join("\n"), None, 0.0).expect_err("out of order");
    assert!(matches!(err, DiffError::Malformed { line: 7, .. }), "{err}");
    let err = diff(&m, &m, HISTORY, Some("FR"), 0.0).expect_err("unknown market");
    let text = err.to_string();
    assert!(
        text.contains("`FR`") && text.contains("US, DE, BR"),
        "{text}"
    );
}

/// Runs `history` through the engine and stores every fact a node would
/// have stored, with the catalog: a data directory in memory.
fn stored(m: &Model, history: &str) -> MemoryStore {
    let store = MemoryStore::new();
    let catalog = serde_json::to_vec(&Catalog::new(&m.spec)).expect("a catalog is JSON");
    store
        .put_meta(crate::versions::CATALOG_KEY, catalog)
        .expect("meta");
    let mut vt = VirtualTime::new(m, Limits::default());
    let mut seqs = std::collections::HashMap::<String, u64>::new();
    let mut batch = WriteBatch::default();
    let mut keep = |customer: &str, at: Timestamp, facts: &[crate::engine::Fact]| {
        for f in facts {
            let seq = seqs.entry(customer.to_owned()).or_default();
            *seq += 1;
            batch
                .facts
                .push((0, customer.to_owned(), *seq, at.0, encode_fact(f)));
        }
    };
    for line in history.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let at = Timestamp::parse_rfc3339(v["at"].as_str().expect("at")).expect("RFC 3339");
        while let Some(fired) = vt.fire_next(at) {
            keep(&fired.customer, fired.at, &fired.decision.facts);
        }
        let (customer, input) = if let Some(i) = v.get("ingest") {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            let event = crate::engine::Event {
                id: s("id"),
                source: s("source"),
                event_type: s("type"),
                customer: s("customer"),
                market: s("market"),
                occurred_at: at,
                attributes: Default::default(),
            };
            (s("customer"), Input::Event(event))
        } else if let Some(a) = v.get("authorize") {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            (
                s("customer"),
                Input::Authorize {
                    team: s("team"),
                    action: s("action"),
                },
            )
        } else {
            let a = &v["ack"];
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            let id = s("escalation_id");
            let customer = crate::engine::parse_escalation_id(&id)
                .expect("an escalation id")
                .customer
                .to_owned();
            (
                customer,
                Input::Acknowledge {
                    escalation_id: id,
                    team: s("team"),
                    note: s("note"),
                },
            )
        };
        let d = vt.run(&customer, &input, at);
        keep(&customer, at, &d.facts);
    }
    store.commit(batch).expect("commit");
    store
}

#[test]
fn the_export_replays_to_the_same_answers_as_the_inputs_it_came_from() {
    let m = model(SAAS);
    // Only what a node records: a denied authorization (an allowed one
    // leaves no fact) and an acknowledgement.
    let history = [
        HISTORY.lines().take(4).collect::<Vec<_>>().join("\n").as_str(),
        r#"{"at":"2026-03-02T09:12:00Z","authorize":{"customer":"de-1","team":"marketing","action":"score"}}"#,
        HISTORY.lines().nth(5).expect("line 6"),
        r#"{"at":"2026-03-02T09:30:00Z","ack":{"escalation_id":"br-1:access_after_payment:1:0:0","team":"provisioning","note":"on it"}}"#,
        HISTORY.lines().nth(6).expect("line 7"),
    ]
    .join("\n");
    let store = stored(&m, &history);
    let exported = export(&store, None).expect("the export runs");
    assert_eq!((exported.customers, exported.pruned), (2, 0));
    assert_eq!(exported.lines.len(), history.lines().count());
    assert_eq!(
        simulate(&m, &exported.lines.join("\n")),
        simulate(&m, &history)
    );
    assert!(exported.lines[6].contains(r#""ack":{"escalation_id":"br-1:access_after_payment:1:0:0","team":"provisioning","note":"on it"}"#), "{}", exported.lines[6]);
    // Sorted by `at`, as simulate requires.
    let ats: Vec<&str> = exported.lines.iter().map(|l| &l[7..34]).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]), "{ats:?}");

    let br = export(&store, Some("BR")).expect("the export runs");
    assert_eq!(br.customers, 1);
    assert!(br.lines.iter().all(|l| l.contains("br-1")));
    let err = export(&store, Some("FR")).expect_err("unknown market");
    assert!(err.to_string().contains("US, DE, BR"), "{err}");
}

#[test]
fn a_customer_whose_history_start_was_pruned_is_left_out_and_counted() {
    let m = model(SAAS);
    let store = stored(&m, HISTORY);
    // As if the retention removed br-1's first facts (its creation
    // among them).
    let pruned = MemoryStore::new();
    pruned
        .put_meta(
            crate::versions::CATALOG_KEY,
            store
                .meta(crate::versions::CATALOG_KEY)
                .expect("meta")
                .expect("catalog"),
        )
        .expect("meta");
    let mut batch = WriteBatch::default();
    for (shard, c, seq, bytes) in store.scan_facts(None, 1000).expect("scan") {
        if !(c == "br-1" && seq <= 2) {
            batch.facts.push((shard, c, seq, 0, bytes));
        }
    }
    pruned.commit(batch).expect("commit");
    let exported = export(&pruned, None).expect("the export runs");
    assert_eq!((exported.customers, exported.pruned), (1, 1));
    assert!(exported.lines.iter().all(|l| !l.contains("br-1")));
}

#[test]
fn the_store_scan_pages_through_every_fact_in_key_order() {
    let m = model(SAAS);
    let store = stored(&m, HISTORY);
    let all = store.scan_facts(None, 1000).expect("scan");
    let mut paged = Vec::new();
    let mut after: Option<(u32, String, u64)> = None;
    loop {
        let page = store
            .scan_facts(after.as_ref().map(|(s, c, q)| (*s, c.as_str(), *q)), 3)
            .expect("scan");
        let Some(last) = page.last() else { break };
        after = Some((last.0, last.1.clone(), last.2));
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert!(
        all.windows(2)
            .all(|w| (w[0].0, &w[0].1, w[0].2) < (w[1].0, &w[1].1, w[1].2))
    );
}
