//! Escalations over real gRPC against the real `handoff` binary on
//! 127.0.0.1:0: subscribers (filtered, resumed from a cursor) following
//! ghost customers to resolution, and list_open and acknowledge.
//!
//! Each test starts its own node on its own data directory and uses its own
//! customer ids, so the tests run in parallel. Escalations come from the
//! fast model (`tests/models/fast.toml`): a ghost customer (paid, no access)
//! is warned at 2 s, breached at 4 s and re-escalated to cx_director every
//! 2 s after 6 s (BR: 1 s, 2 s, 4 s). Waits are deadlines, never sleeps.

mod common;

use common::api::*;
use common::{NodeProcess, event, eventually, fast_model, fresh_dir, ingest};
use handoff::api::pb;
use tonic::Code;

#[tokio::test]
async fn subscribers_follow_ghost_customers_to_resolution_and_resume() {
    let node = NodeProcess::start(&fresh_dir("api-subscribe"), &fast_model());
    let mut client = node.lifecycle().await;
    let mut esc = node.escalations().await;

    // Requests a node refuses.
    for (request, words) in [
        (
            subscription(&[], &[], pb::Severity::Unspecified, "garbage"),
            "garbage",
        ),
        (
            subscription(&[], &[], pb::Severity::Unspecified, "h1-1-2"),
            "shards",
        ),
        (
            subscription(&["janitors"], &[], pb::Severity::Unspecified, ""),
            "janitors",
        ),
        (
            subscription(&[], &["br"], pb::Severity::Unspecified, ""),
            "market `br` is not declared",
        ),
    ] {
        let e = esc.subscribe(request).await.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains(words), "{e}");
    }
    let e = esc
        .subscribe(pb::SubscribeRequest {
            min_severity: 9,
            ..Default::default()
        })
        .await
        .expect_err("not a severity");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    let none = pb::Severity::Unspecified;
    let mut all = subscribe(&node, subscription(&[], &[], none, "")).await;
    let mut director = subscribe(&node, subscription(&["cx_director"], &[], none, "")).await;
    let mut brazil = subscribe(&node, subscription(&[], &["BR"], none, "")).await;
    let mut high = subscribe(&node, subscription(&[], &[], pb::Severity::High, "")).await;

    ghost(&mut client, "sub-us", "US").await;
    ghost(&mut client, "sub-br", "BR").await;

    // Each ghost is warned, breached, then re-escalated to cx_director.
    let fired_all = |seen: &[pb::EscalationEvent]| {
        ["sub-us", "sub-br"]
            .iter()
            .all(|c| (0..3).all(|tier| seen.iter().any(|e| fired(e, c, tier))))
    };
    let mut log = read_until(
        &mut all,
        ESCALATION_WAIT,
        "three tiers of both ghosts",
        fired_all,
    )
    .await;
    for c in ["sub-us", "sub-br"] {
        let position = |tier| {
            log.iter()
                .position(|e| fired(e, c, tier))
                .expect("seen above")
        };
        assert!(
            position(0) < position(1) && position(1) < position(2),
            "{c}: {log:#?}"
        );
        let warned = &log[position(0)];
        assert_eq!(kind(warned), pb::EscalationKind::TierReached);
        assert_eq!(warned.team, "provisioning");
        assert_eq!(severity(warned.severity), pb::Severity::Low);
        assert_eq!(warned.handoff, "billing->provisioning");
        assert_eq!(warned.states["lifecycle"], "paid");
        assert!(!warned.late_attach);
        let breached = &log[position(1)];
        assert_eq!(kind(breached), pb::EscalationKind::Breached);
        assert_eq!(breached.team, "provisioning");
        assert_eq!(severity(breached.severity), pb::Severity::High);
        assert_eq!(micros(&breached.due), micros(&breached.deadline));
        let director = &log[position(2)];
        assert_eq!(kind(director), pb::EscalationKind::TierReached);
        assert_eq!(director.team, "cx_director");
        assert_eq!(severity(director.severity), pb::Severity::Critical);
        assert_eq!(director.repeat, 0);
        assert_eq!(
            micros(&director.due),
            micros(&director.deadline) + 2 * SECOND
        );
    }
    for e in &log {
        let market = if e.customer_id == "sub-us" {
            "US"
        } else {
            "BR"
        };
        assert_eq!(e.market, market, "{e:?}");
    }

    // Access arrives: the SLAs complete late and every escalation resolves.
    for c in ["sub-us", "sub-br"] {
        let r = ingest(
            &mut client,
            event(&format!("{c}-access"), "access", "access_granted", c, ""),
        )
        .await;
        assert_eq!(r.states["lifecycle"], "active", "{r:?}");
        let late = r
            .sla_changes
            .iter()
            .find(|s| s.sla == "access_after_payment")
            .expect("the ghost SLA ended");
        assert_eq!(late.kind, pb::SlaChangeKind::Late as i32);
    }
    let resolved_all = |seen: &[pb::EscalationEvent]| {
        let fired: Vec<_> = seen
            .iter()
            .filter(|e| kind(e) != pb::EscalationKind::Resolved)
            .collect();
        fired.iter().all(|f| {
            seen.iter().any(|r| {
                kind(r) == pb::EscalationKind::Resolved && r.escalation_id == f.escalation_id
            })
        })
    };
    let rest = read_until(
        &mut all,
        ESCALATION_WAIT,
        "every escalation resolved",
        |seen| {
            let mut both = log.clone();
            both.extend_from_slice(seen);
            resolved_all(&both)
        },
    )
    .await;
    log.extend(rest);
    for r in log
        .iter()
        .filter(|e| kind(e) == pb::EscalationKind::Resolved)
    {
        let f = log
            .iter()
            .find(|f| f.escalation_id == r.escalation_id && kind(f) != pb::EscalationKind::Resolved)
            .expect("a resolution follows its firing");
        assert_eq!(
            (r.team.as_str(), r.severity, r.tier),
            (f.team.as_str(), f.severity, f.tier)
        );
    }
    let everything = keys(&log);
    assert_eq!(everything.len(), log.len(), "no event twice: {log:#?}");

    // Both SLAs are over: nothing more escalates, so each filtered
    // subscriber has exactly its share of `log`.
    let directed = share(&mut director, &log, "team cx_director", |e| {
        e.team == "cx_director"
    })
    .await;
    share(&mut brazil, &log, "market BR", |e| e.market == "BR").await;
    share(&mut high, &log, "severity high and above", |e| {
        e.severity >= pb::Severity::High as i32
    })
    .await;

    // A filtered subscriber resumes from its own cursors.
    let mut resumed = subscribe(
        &node,
        subscription(&["cx_director"], &[], none, &directed[0].cursor),
    )
    .await;
    let after = read_n(
        &mut resumed,
        directed.len() - 1,
        "the resumed cx_director stream",
    )
    .await;
    assert_eq!(keys(&after), keys(&directed[1..]));

    // "earliest" replays everything retained.
    let mut replay = subscribe(&node, subscription(&[], &[], none, "earliest")).await;
    let replayed = read_n(&mut replay, log.len(), "the replay").await;
    assert_eq!(keys(&replayed), everything);

    // Resuming after the cursor of the n-th event yields exactly the events
    // after it: no gap, no repeat.
    for n in [1, replayed.len() / 2, replayed.len() - 1] {
        let cursor = &replayed[n - 1].cursor;
        let mut resumed = subscribe(&node, subscription(&[], &[], none, cursor)).await;
        let after = read_n(&mut resumed, replayed.len() - n, "the resumed stream").await;
        assert_eq!(
            keys(&after),
            keys(&replayed[n..]),
            "resumed after event {n}"
        );
        assert_eq!(
            keys(&after).len(),
            after.len(),
            "no repeats after event {n}"
        );
    }
}

#[tokio::test]
async fn list_open_and_acknowledge_follow_a_ghost_customer() {
    let node = NodeProcess::start(&fresh_dir("api-ack"), &fast_model());
    let mut client = node.lifecycle().await;
    let mut esc = node.escalations().await;

    let e = list_open(&mut esc, "janitors")
        .await
        .expect_err("undeclared team");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("janitors"), "{e}");
    assert!(
        list_open(&mut esc, "provisioning")
            .await
            .expect("listed")
            .is_empty()
    );

    ghost(&mut client, "ack-us", "US").await;
    let ours = |open: Vec<pb::OpenEscalation>| -> Vec<pb::OpenEscalation> {
        open.into_iter()
            .filter(|e| e.customer_id == "ack-us")
            .collect()
    };

    // The 50% warning is open for provisioning.
    let warning = eventually(ESCALATION_WAIT, "the 50% warning", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "provisioning").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 0)
        }
    })
    .await;
    assert_eq!(warning.kind, pb::EscalationKind::TierReached as i32);
    assert_eq!(warning.sla, "access_after_payment");
    assert_eq!(warning.escalation_id, "ack-us:access_after_payment:1:0:0");
    assert!(!warning.acknowledged);

    // Marketing may not acknowledge it; provisioning may.
    let e = acknowledge(&mut esc, &warning.escalation_id, "marketing")
        .await
        .expect_err("not marketing's");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("marketing may not acknowledge")
            && e.message().contains("only provisioning may"),
        "{e}"
    );
    let ok = acknowledge(&mut esc, &warning.escalation_id, "provisioning")
        .await
        .expect("the notified team acknowledges");
    assert!(ok.acknowledged, "{ok:?}");
    let open = ours(list_open(&mut esc, "provisioning").await.expect("listed"));
    let acked = open
        .iter()
        .find(|e| e.escalation_id == warning.escalation_id)
        .expect("still open until resolved");
    assert!(acked.acknowledged);

    // Errors: unknown escalations and garbage ids.
    for id in [
        "ack-us:access_after_payment:7:0:0",
        "ack-nobody:access_after_payment:1:0:0",
    ] {
        let e = acknowledge(&mut esc, id, "provisioning")
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), Code::NotFound, "{id}: {e}");
    }
    let e = acknowledge(&mut esc, "garbage", "provisioning")
        .await
        .expect_err("garbage");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("garbage"), "{e}");
    let e = acknowledge(&mut esc, &warning.escalation_id, "")
        .await
        .expect_err("no team");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = acknowledge(&mut esc, &warning.escalation_id, "janitors")
        .await
        .expect_err("an undeclared team");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(
        e.message().contains("team `janitors` is not declared"),
        "{e}"
    );

    // Acknowledging does not stop later tiers: the breach, then cx_director.
    let breach = eventually(ESCALATION_WAIT, "the breach", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "provisioning").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 1)
        }
    })
    .await;
    assert_eq!(breach.kind, pb::EscalationKind::Breached as i32);
    assert!(!breach.acknowledged);
    let director = eventually(ESCALATION_WAIT, "the cx_director re-escalation", || {
        let mut esc = esc.clone();
        async move {
            let open = list_open(&mut esc, "cx_director").await.expect("listed");
            open.into_iter()
                .find(|e| e.customer_id == "ack-us" && e.tier == 2)
        }
    })
    .await;
    assert_eq!(director.team, "cx_director");
    assert!(
        ours(list_open(&mut esc, "provisioning").await.expect("listed"))
            .iter()
            .all(|e| e.team == "provisioning"),
        "ListOpen is by team"
    );
    let e = acknowledge(&mut esc, &director.escalation_id, "marketing")
        .await
        .expect_err("not marketing's");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("cx_director (notified) or provisioning (the SLA's owner)"),
        "{e}"
    );
    // The SLA's owner may acknowledge a tier notified to someone else, and
    // so may the notified team.
    for team in ["provisioning", "cx_director"] {
        let ok = acknowledge(&mut esc, &director.escalation_id, team)
            .await
            .unwrap_or_else(|e| panic!("{team} may acknowledge: {e}"));
        assert!(ok.acknowledged, "{team}: {ok:?}");
    }
    let open = ours(list_open(&mut esc, "cx_director").await.expect("listed"));
    assert!(
        open.iter()
            .any(|e| e.escalation_id == director.escalation_id && e.acknowledged),
        "{open:?}"
    );
    let all_teams = ours(list_open(&mut esc, "").await.expect("listed"));
    assert!(all_teams.iter().any(|e| e.team == "cx_director"));
    assert!(all_teams.iter().any(|e| e.team == "provisioning"));
    let v = customer(&mut client, "ack-us", 0).await.expect("exists");
    assert!(
        v.timeline
            .iter()
            .any(|t| t.kind == pb::TimelineKind::Acknowledged as i32),
        "{:?}",
        v.timeline
    );

    // Access: nothing stays open.
    ingest(
        &mut client,
        event("ack-access", "access", "access_granted", "ack-us", ""),
    )
    .await;
    for team in ["provisioning", "cx_director", ""] {
        let open = ours(list_open(&mut esc, team).await.expect("listed"));
        assert!(open.is_empty(), "{team}: {open:?}");
    }
    assert!(
        customer(&mut client, "ack-us", 0)
            .await
            .expect("exists")
            .escalations
            .is_empty()
    );
}
