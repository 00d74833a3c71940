//! Who may say what, as callers meet it: the real binary serving gRPC over
//! TLS with tokens and client certificates (a throwaway CA made here with
//! rcgen), every rule allowed and denied at least once.

mod common;

use std::time::Duration;

use common::auth::*;
use common::{NodeProcess, event, eventually, fast_model, fresh_dir};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_allows_its_own_callers_and_denies_the_rest_over_tls() {
    let dir = fresh_dir("auth-rules");
    let pki = Pki::new(&dir, "main");
    let (alice, alice_entry) = token_from_cli(&["--operator", "alice"]);
    let (billing, billing_entry) = token_for("source:billing");
    let (access, access_entry) = token_for("source:access");
    let (prov, prov_entry) = token_for("team:provisioning");
    let (mkt, mkt_entry) = token_for("team:marketing");
    let tokens = [&alice, &billing, &access, &prov, &mkt];
    let config = secure_config(
        &dir,
        &pki,
        &[
            alice_entry,
            billing_entry,
            access_entry,
            prov_entry,
            mkt_entry,
        ],
    );
    let node = NodeProcess::start_capturing(
        &dir.join("data"),
        &fast_model(),
        &["--config", config.to_str().expect("utf-8 path")],
        "debug",
    );
    let channel = tls_channel(&node, &pki, None).await;
    let mut lc = LifecycleClient::new(channel.clone());
    let mut esc = EscalationsClient::new(channel.clone());
    // crm proves who it is with a client certificate instead of a token.
    let mut crm =
        LifecycleClient::new(tls_channel(&node, &pki, Some(pki.client("source:crm"))).await);
    let mut errors = Errors::default();
    let (alice, billing, access, prov, mkt) = (
        Some(alice.as_str()),
        Some(billing.as_str()),
        Some(access.as_str()),
        Some(prov.as_str()),
        Some(mkt.as_str()),
    );
    let c = "acme-br";

    // Ingest: a source sends its own events; not another source's, and
    // teams send none. The operator may send anything.
    let r = crm
        .ingest(ingest_req(event("d1", "crm", "deal_won", c, "BR")))
        .await
        .expect("crm sends its own event (client certificate)")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);
    errors.denied(
        lc.ingest(with(
            billing,
            ingest_req(event("d2", "crm", "deal_won", "other", "BR")),
        ))
        .await,
        "own_events_only",
    );
    errors.denied(
        lc.ingest(with(
            prov,
            ingest_req(event("p1", "billing", "payment_succeeded", c, "")),
        ))
        .await,
        "sources_ingest",
    );
    // A batch with one event that is not the caller's is denied whole.
    let mixed = pb::IngestBatchRequest {
        events: vec![
            event("b1", "billing", "boleto_settled", c, ""),
            event("d3", "crm", "deal_won", "other", "BR"),
        ],
    };
    let s = errors.expect(
        lc.ingest_batch(with(billing, mixed)).await,
        Code::PermissionDenied,
        "denied by rule own_events_only: event 1 of the batch",
    );
    assert!(s.message().contains("crm.deal_won"), "{}", s.message());
    let v = lc
        .get_customer(view(alice, c))
        .await
        .expect("the operator reads the view")
        .into_inner();
    assert_eq!(
        state_of(&v, "lifecycle"),
        "onboarding",
        "nothing of the denied batch was applied"
    );
    let r = lc
        .ingest_batch(with(
            billing,
            pb::IngestBatchRequest {
                events: vec![event("b1", "billing", "boleto_settled", c, "")],
            },
        ))
        .await
        .expect("billing sends its own batch")
        .into_inner();
    assert_eq!(r.results[0].outcome, pb::Outcome::Applied as i32);
    assert_eq!(
        r.results[0].states.get("lifecycle").map(String::as_str),
        Some("paid")
    );
    let r = lc
        .ingest(with(
            alice,
            ingest_req(event("op1", "crm", "deal_won", "acme-us", "US")),
        ))
        .await
        .expect("an operator may send any event")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);

    // Escalations start now (BR: warning at 1 s, breach at 2 s, then
    // cx_director every 2 s). Follow them as the operator and as
    // provisioning, each with no team filter.
    let all = follow(esc.clone(), subscribe_all(alice, &[]));
    let provisioning_sees = follow(esc.clone(), subscribe_all(prov, &[]));
    errors.denied(
        esc.subscribe(subscribe_all(prov, &["cx_director"])).await,
        "own_team_only",
    );
    errors.denied(
        esc.subscribe(subscribe_all(billing, &[])).await,
        "teams_only",
    );
    esc.subscribe(subscribe_all(prov, &["provisioning"]))
        .await
        .expect("a team may name itself");

    // Authorize: the team is the caller's.
    let authorize = |token, team: &str, action: &str| {
        with(
            token,
            pb::AuthorizeRequest {
                customer_id: c.into(),
                team: team.into(),
                action: action.into(),
            },
        )
    };
    let d = lc
        .authorize(authorize(prov, "", "grant_access"))
        .await
        .expect("provisioning asks as itself")
        .into_inner();
    assert!(d.allowed, "{d:?}");
    let d = lc
        .authorize(authorize(mkt, "", "grant_access"))
        .await
        .expect("marketing asks as itself")
        .into_inner();
    assert!(!d.allowed, "marketing may not grant access: {d:?}");
    errors.denied(
        lc.authorize(authorize(mkt, "provisioning", "grant_access"))
            .await,
        "own_team_only",
    );
    errors.denied(
        lc.authorize(authorize(billing, "", "grant_access")).await,
        "teams_only",
    );
    let d = lc
        .authorize(authorize(alice, "provisioning", "grant_access"))
        .await
        .expect("an operator asks for any team")
        .into_inner();
    assert!(d.allowed);

    // CheckMessage: teams and operators.
    let check = |token| {
        with(
            token,
            pb::CheckMessageRequest {
                customer_id: c.into(),
                message_class: "transactional".into(),
            },
        )
    };
    let d = lc
        .check_message(check(mkt))
        .await
        .expect("a team checks")
        .into_inner();
    assert!(d.allowed, "{d:?}");
    errors.denied(lc.check_message(check(billing)).await, "teams_only");

    // GetCustomer: everyone sees the view; only operators the timeline.
    for token in [prov, billing] {
        let v = lc
            .get_customer(view(token, c))
            .await
            .expect("the view")
            .into_inner();
        assert_eq!(state_of(&v, "lifecycle"), "paid");
        assert!(v.timeline.is_empty() && v.timeline_withheld, "{v:?}");
    }
    let v = lc
        .get_customer(view(alice, c))
        .await
        .expect("the view")
        .into_inner();
    assert!(!v.timeline.is_empty() && !v.timeline_withheld, "{v:?}");

    // ListCustomers: as GetCustomer, every principal lists (summaries
    // carry no timeline); a caller without credentials does not.
    for token in [prov, billing, alice] {
        let req = pb::ListCustomersRequest {
            market: "BR".into(),
            ..Default::default()
        };
        let page = lc
            .list_customers(with(token, req))
            .await
            .expect("lists")
            .into_inner();
        assert!(
            page.customers.iter().any(|s| s.customer_id == c),
            "{page:?}"
        );
    }
    let err = lc
        .list_customers(with(None, pb::ListCustomersRequest::default()))
        .await
        .expect_err("no credentials");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // Wait for the re-escalation to cx_director.
    let list = |token, team: &str| with(token, pb::ListOpenRequest { team: team.into() });
    let open = eventually(Duration::from_secs(30), "a cx_director escalation", || {
        let mut esc = esc.clone();
        async move {
            let open = esc
                .list_open(list(alice, ""))
                .await
                .ok()?
                .into_inner()
                .escalations;
            open.iter().any(|e| e.team == "cx_director").then_some(open)
        }
    })
    .await;
    assert!(open.iter().any(|e| e.team == "provisioning"));

    // ListOpen: a team's own, unless operator.
    let mine = esc
        .list_open(list(prov, ""))
        .await
        .expect("provisioning lists its own")
        .into_inner()
        .escalations;
    assert!(
        !mine.is_empty() && mine.iter().all(|e| e.team == "provisioning"),
        "{mine:?}"
    );
    errors.denied(
        esc.list_open(list(prov, "cx_director")).await,
        "own_team_only",
    );
    errors.denied(esc.list_open(list(billing, "")).await, "teams_only");

    // Acknowledge: the notified team (or the SLA's owner), as itself.
    let warning = mine
        .iter()
        .find(|e| e.tier == 0)
        .expect("the 50% warning")
        .escalation_id
        .clone();
    let ack = |token, team: &str| {
        with(
            token,
            pb::AcknowledgeRequest {
                escalation_id: warning.clone(),
                team: team.into(),
                note: "on it".into(),
            },
        )
    };
    errors.denied(esc.acknowledge(ack(mkt, "")).await, "notified_or_owner");
    errors.denied(
        esc.acknowledge(ack(mkt, "provisioning")).await,
        "own_team_only",
    );
    errors.denied(esc.acknowledge(ack(billing, "")).await, "teams_only");
    let r = esc
        .acknowledge(ack(prov, ""))
        .await
        .expect("provisioning acknowledges its escalation")
        .into_inner();
    assert!(r.acknowledged);

    // Access arrives: every escalation of the SLA instance is resolved.
    lc.ingest(with(
        access,
        ingest_req(event("a1", "access", "access_granted", c, "")),
    ))
    .await
    .expect("access sends its own event");
    let log = eventually(Duration::from_secs(30), "every escalation resolved", || {
        let all = all.clone();
        async move {
            let log = all.lock().expect("not poisoned").clone();
            let fired = log
                .iter()
                .filter(|e| kind(e) != pb::EscalationKind::Resolved)
                .count();
            let resolved = log
                .iter()
                .filter(|e| kind(e) == pb::EscalationKind::Resolved)
                .count();
            (fired > 0 && fired == resolved).then_some(log)
        }
    })
    .await;
    assert!(log.iter().any(|e| e.team == "cx_director"), "{log:?}");
    // Subscribe with no filter gave provisioning exactly its own part of
    // the log, in order (a cx_director event sits before its resolutions,
    // so a leak would show in the first entries).
    let expected: Vec<(String, i32)> = log
        .iter()
        .filter(|e| e.team == "provisioning")
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect();
    let got = eventually(Duration::from_secs(10), "provisioning's stream", || {
        let seen = provisioning_sees.clone();
        let n = expected.len();
        async move {
            let seen = seen.lock().expect("not poisoned").clone();
            (seen.len() >= n).then_some(seen)
        }
    })
    .await;
    let got: Vec<(String, i32)> = got
        .iter()
        .take(expected.len())
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect();
    assert_eq!(got, expected);

    // Denials are counted by principal and rule.
    let metrics = node.scrape();
    // Every tier fired while provisioning and alice were subscribed was
    // handed to both live streams, each hand-off timed from its due time.
    let fired = got
        .iter()
        .filter(|(_, k)| *k != pb::EscalationKind::Resolved as i32)
        .count();
    let lagged = metrics
        .lines()
        .find_map(|l| l.strip_prefix("handoff_escalation_stream_lag_seconds_count "))
        .and_then(|n| n.trim().parse::<f64>().ok());
    assert!(
        lagged.is_some_and(|n| n >= 2.0 * fired as f64) && fired > 0,
        "{fired} fired escalations, two live subscribers, stream lag observed {lagged:?} times:\n{metrics}"
    );
    // And each firing's decision timed from its due time to durable.
    let durable = metrics
        .lines()
        .find_map(|l| l.strip_prefix("handoff_firing_durable_seconds_count "))
        .and_then(|n| n.trim().parse::<f64>().ok());
    assert!(
        durable.is_some_and(|n| n >= fired as f64),
        "{fired} fired escalations, firings durable observed {durable:?} times:\n{metrics}"
    );
    for (principal, rule) in [
        ("source:billing", "own_events_only"),
        ("team:provisioning", "sources_ingest"),
        ("team:marketing", "own_team_only"),
        ("team:marketing", "notified_or_owner"),
        ("source:billing", "teams_only"),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("handoff_denied_total{")
                    && l.contains(&format!("principal=\"{principal}\""))
                    && l.contains(&format!("rule=\"{rule}\""))),
            "no handoff_denied_total for {principal}, {rule} in\n{metrics}"
        );
    }

    // No token anywhere: errors, logs, metrics.
    let logs = node.log();
    assert!(logs.contains("permission denied"), "denials are logged");
    for t in tokens {
        let secret = &t[handoff::auth::TOKEN_PREFIX.len()..];
        for text in errors.0.iter().chain([&logs, &metrics]) {
            assert!(!text.contains(secret), "a token leaked into: {text}");
        }
    }
}
